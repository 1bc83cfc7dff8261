//! The development provider: nothing leaves the machine. It prints the SMS and
//! appends it as a JSON line to the operator's outbox file (`FOCO_CONSOLE_OUTBOX`),
//! so `make run` and demos show what would have been sent. Off unless the
//! operator turns it on (`FOCO_CONSOLE_PROVIDER`); a route cannot choose the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::{OutboundSms, ProviderOutcome};

#[derive(Debug, Clone)]
pub struct ConsoleProvider {
    outbox: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl ConsoleProvider {
    pub fn new(outbox: &Path, lock: Arc<tokio::sync::Mutex<()>>) -> Self {
        Self {
            outbox: outbox.to_path_buf(),
            lock,
        }
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        // Printing the body is the whole point of console mode: it stands in for the
        // handset. It goes to stdout, not to the (masked, body-free) logs.
        println!(
            "SMS to {} via console: {}",
            foco_runtime::telemetry::mask_phone(&message.to),
            message.body
        );
        let line = serde_json::json!({
            "job_id": message.job_id,
            "to": message.to,
            "from": message.from,
            "body": message.body,
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        match self.append(&line).await {
            Ok(()) => ProviderOutcome::sent(format!("console-{}", message.job_id)),
            Err(error) => {
                tracing::warn!(error = %error, outbox = %self.outbox.display(), "console outbox not writable");
                ProviderOutcome::transient("console outbox not writable")
            }
        }
    }

    async fn append(&self, line: &serde_json::Value) -> std::io::Result<()> {
        let mut text = line.to_string();
        text.push('\n');
        let _guard = self.lock.lock().await;
        if let Some(parent) = self
            .outbox
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.outbox)
            .await?;
        file.write_all(text.as_bytes()).await?;
        file.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_json_lines_and_creates_directories() {
        let directory = std::env::temp_dir().join(format!("foco-console-{}", uuid::Uuid::new_v4()));
        let outbox = directory.join("nested").join("outbox.jsonl");
        let provider = ConsoleProvider::new(&outbox, Arc::default());
        let message = OutboundSms {
            job_id: "job_1".to_owned(),
            account_id: "a".to_owned(),
            event_id: "e".to_owned(),
            to: "+525512345678".to_owned(),
            from: String::new(),
            body: "Tu código es 1234".to_owned(),
        };
        for _ in 0..2 {
            assert_eq!(
                provider.send(&message).await,
                ProviderOutcome::sent("console-job_1")
            );
        }
        let written = std::fs::read_to_string(&outbox).unwrap();
        let lines: Vec<serde_json::Value> = written
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["to"], "+525512345678");
        assert_eq!(lines[0]["body"], "Tu código es 1234");
        assert_eq!(lines[0]["job_id"], "job_1");
        assert!(lines[0]["at"].as_str().is_some());
        std::fs::remove_dir_all(directory).unwrap();
    }
}
