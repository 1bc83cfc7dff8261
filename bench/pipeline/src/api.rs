//! The messaging API under load: `SendMessage` calls from concurrent clients, each
//! waiting for its answer before the next call (closed loop), through control,
//! FOCO_SMS and the sender to the fake provider; against the sender's own ceiling
//! in the same run, on the same pipeline: as many jobs published straight onto
//! FOCO_SMS (as rules publishes a rule's jobs), timed from the first SMS to the
//! last at the provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use foco_proto::v1::{GetAccountRequest, SendMessageRequest, SmsJob};
use prost::Message as _;
use secrecy::SecretString;

use crate::deployment::{Context, Foco, ORDERS_ACCOUNT};
use crate::sms::{OWNER_NUMBER, webhook_id};
use crate::stats::{Latencies, plain_percentile};
use crate::unix_micros;

/// What one run of the messaging API measured.
#[derive(Debug)]
pub struct ApiResult {
    pub clients: usize,
    pub seconds: f64,
    /// Calls answered with a message id, and refused or failed ones.
    pub answered: u64,
    pub failed: u64,
    /// Each answered call's latency, sorted (µs).
    pub call_us: Vec<u64>,
    /// From the call to the provider, per SMS.
    pub end_to_end: Latencies,
    /// SMS per second at the provider, first to last, of the calls' messages.
    pub delivered_per_second: f64,
    /// The sender alone on the same pipeline: jobs published straight onto
    /// FOCO_SMS, SMS per second at the provider, first to last.
    pub ceiling_jobs: u64,
    pub ceiling_per_second: f64,
    /// CPU each process used from the first call until the calls' last SMS
    /// arrived (the clients are the benchmark's own process).
    pub cpu: Vec<(String, Duration)>,
    /// How long that was, seconds.
    pub cpu_window: f64,
}

/// Foco's processes, nats-server, PostgreSQL, the fake provider and the
/// benchmark's own process (the API clients).
fn cpu_sample(context: &Context, foco: &Foco) -> Vec<(String, Duration)> {
    let mut sample = crate::phases::cpu_sample_of(context, foco.processes(), &foco.database.name);
    sample.push(("API clients".to_owned(), crate::cpu::this_process()));
    sample
}

/// `clients` closed-loop callers for `seconds`, then the sender's ceiling.
pub async fn run(
    context: &Context,
    foco: &Foco,
    clients: usize,
    seconds: u64,
    tag: &str,
) -> anyhow::Result<ApiResult> {
    let key = SecretString::from(context.admin_key.clone());
    let cpu_before = cpu_sample(context, foco);
    let cpu_start = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let callers = (0..clients).map(|_| {
        let mut api = foco_control_client::connect_messaging(&foco.control_url, &key)?;
        let sequence = sequence.clone();
        let tag = tag.to_owned();
        Ok(tokio::spawn(async move {
            let mut answered = Vec::new();
            let mut failed = 0u64;
            while Instant::now() < deadline {
                let number = sequence.fetch_add(1, Ordering::Relaxed);
                let body = format!("Codigo {} t={}", webhook_id(&tag, number), unix_micros());
                let call = Instant::now();
                let result = api
                    .send_message(SendMessageRequest {
                        account: ORDERS_ACCOUNT.to_owned(),
                        to: OWNER_NUMBER.to_owned(),
                        body,
                        ..Default::default()
                    })
                    .await;
                match result {
                    Ok(_) => answered.push(call.elapsed().as_micros() as u64),
                    Err(_) => failed += 1,
                }
            }
            (answered, failed)
        }))
    });
    let callers = callers.collect::<anyhow::Result<Vec<_>>>()?;
    let mut call_us = Vec::new();
    let mut failed = 0;
    for caller in callers {
        let (answered, refused) = caller.await?;
        call_us.extend(answered);
        failed += refused;
    }
    let elapsed = started.elapsed().as_secs_f64();
    call_us.sort_unstable();
    let answered = call_us.len() as u64;

    let arrivals = wait_for_arrivals(context, tag, answered).await?;
    let end_to_end = Latencies::new(
        arrivals
            .iter()
            .map(|arrival| arrival.arrived_us.saturating_sub(arrival.stamp_us))
            .collect(),
        answered.saturating_sub(arrivals.len() as u64),
        0,
    );
    let delivered_per_second = first_to_last_rate(&arrivals);
    let cpu = cpu_sample(context, foco)
        .into_iter()
        .zip(cpu_before)
        .map(|((label, after), (_, before))| (label, after.saturating_sub(before)))
        .collect();
    let cpu_window = cpu_start.elapsed().as_secs_f64();

    let ceiling_tag = format!("{tag}c");
    publish_jobs(context, foco, &ceiling_tag, answered).await?;
    let ceiling = wait_for_arrivals(context, &ceiling_tag, answered).await?;
    Ok(ApiResult {
        clients,
        seconds: elapsed,
        answered,
        failed,
        call_us,
        end_to_end,
        delivered_per_second,
        ceiling_jobs: ceiling.len() as u64,
        ceiling_per_second: first_to_last_rate(&ceiling),
        cpu,
        cpu_window,
    })
}

/// SMS per second between the first and the last arrival.
fn first_to_last_rate(arrivals: &[crate::fake_provider::Arrival]) -> f64 {
    let first = arrivals.iter().map(|arrival| arrival.arrived_us).min();
    let last = arrivals.iter().map(|arrival| arrival.arrived_us).max();
    match (first, last) {
        (Some(first), Some(last)) if last > first => {
            (arrivals.len() - 1) as f64 / ((last - first) as f64 / 1e6)
        }
        _ => 0.0,
    }
}

/// The arrivals of `tag` once `expected` came or the drain wait ended.
async fn wait_for_arrivals(
    context: &Context,
    tag: &str,
    expected: u64,
) -> anyhow::Result<Vec<crate::fake_provider::Arrival>> {
    let deadline = Instant::now() + context.settings.drain;
    loop {
        let count = context.fake.count(tag).await?;
        if count.distinct >= expected || Instant::now() >= deadline {
            return context.fake.arrivals(tag).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `count` jobs of the orders account onto FOCO_SMS as fast as
/// JetStream takes them (acks awaited in windows), as rules would.
async fn publish_jobs(context: &Context, foco: &Foco, tag: &str, count: u64) -> anyhow::Result<()> {
    let account_id = foco_control_client::connect(
        &foco.control_url,
        &SecretString::from(context.admin_key.clone()),
    )?
    .get_account(GetAccountRequest {
        account: ORDERS_ACCOUNT.to_owned(),
    })
    .await
    .context("read the orders account")?
    .into_inner()
    .id;
    let jetstream = async_nats::jetstream::new(context.nats.clone());
    let subject = foco.names.sms_subject(&account_id);
    let to = OWNER_NUMBER.replace(' ', "");
    let mut pending = Vec::new();
    for number in 0..count {
        let now_ms = (unix_micros() / 1000) as i64;
        let id = webhook_id(tag, number);
        let job = SmsJob {
            job_id: format!("job_{id}"),
            account_id: account_id.clone(),
            event_id: id.clone(),
            to: to.clone(),
            body: format!("Codigo {id} t={}", unix_micros()),
            priority: 1,
            created_at_ms: now_ms,
            expires_at_ms: now_ms + 3_600_000,
            ..Default::default()
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(foco_bus::MSG_ID_HEADER, job.job_id.as_str());
        pending.push(
            jetstream
                .publish_with_headers(subject.clone(), headers, job.encode_to_vec().into())
                .await?,
        );
        if pending.len() == 512 {
            for ack in pending.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in pending {
        ack.await?;
    }
    Ok(())
}

/// Prints one run.
pub fn print(result: &ApiResult) {
    let percentile =
        |sorted: &[u64], p: f64| crate::stats::duration_us(plain_percentile(sorted, p));
    println!(
        "\n== messaging API: SendMessage from {} clients, closed loop, {:.0} s",
        result.clients, result.seconds
    );
    println!(
        "SendMessage       {:>6} calls/s  p50 {:>9}  p99 {:>9}  max {:>9}  ({} answered, {} failed)",
        crate::stats::rate(result.answered, result.seconds),
        percentile(&result.call_us, 50.0),
        percentile(&result.call_us, 99.0),
        result
            .call_us
            .last()
            .map_or("-".to_owned(), |max| crate::stats::duration_us(*max)),
        result.answered,
        result.failed,
    );
    println!(
        "  their SMS       {:>6} SMS/s at the provider first to last; call to provider p50 {} p99 {} ({} not arrived)",
        format!("{:.0}", result.delivered_per_second),
        result.end_to_end.percentile(50.0),
        result.end_to_end.percentile(99.0),
        result.end_to_end.missing,
    );
    println!(
        "sender ceiling    {:>6} SMS/s: {} jobs published straight onto FOCO_SMS",
        format!("{:.0}", result.ceiling_per_second),
        result.ceiling_jobs,
    );
    if result.answered > 0 {
        let per_call = |cpu: &Duration| cpu.as_micros() as f64 / result.answered as f64;
        let total: Duration = result.cpu.iter().map(|(_, cpu)| *cpu).sum();
        let shares: Vec<String> = result
            .cpu
            .iter()
            .map(|(label, cpu)| format!("{label} {:.0}", per_call(cpu)))
            .collect();
        println!(
            "  CPU per call, µs: {} (total {:.0}: {:.2} cores busy)",
            shares.join(", "),
            per_call(&total),
            total.as_secs_f64() / result.cpu_window.max(1e-9)
        );
    }
    if result.ceiling_per_second > 0.0 {
        println!(
            "ratio SendMessage calls/s / sender ceiling: {:.2}",
            result.answered as f64 / result.seconds / result.ceiling_per_second
        );
    }
}
