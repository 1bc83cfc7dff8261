//! What tasks woken at the same moment hand over, taken together: the acks of
//! the pull loop and the publishes of a [`crate::Publisher`] go to the NATS
//! client back to back, and the client writes the commands it finds queued in
//! one write, where commands sent by each task as it runs are written one by
//! one (the client's connection task runs between them).

use tokio::sync::mpsc;

/// Most items taken at once.
pub(crate) const AT_ONCE: usize = 512;

/// Waits for the next item, yields once so that the other tasks woken with
/// its sender hand theirs over too, and takes what they handed over into
/// `batch` (up to [`AT_ONCE`]). `false` once every sender is gone and nothing
/// is left.
pub(crate) async fn take<T>(
    handed_over: &mut mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
) -> bool {
    if handed_over.recv_many(batch, AT_ONCE).await == 0 {
        return false;
    }
    tokio::task::yield_now().await;
    while batch.len() < AT_ONCE {
        match handed_over.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    true
}
