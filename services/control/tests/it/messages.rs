//! ListMessages reads what the sender wrote to `messages`.

use foco_proto::v1::{ListMessagesRequest, MessageStatus};
use uuid::Uuid;

use crate::harness::TestControl;

async fn insert_message(
    control: &TestControl,
    account_id: &str,
    job: &str,
    event: &str,
    status: &str,
    minutes_ago: i32,
) {
    sqlx::query(
        "INSERT INTO messages (job_id, account_id, event_id, recipient, body, status, provider, attempts,
                               created_at, updated_at, sent_at)
         VALUES ($1, $2, $3, '+5215512345678', 'hola', $4, 'primary', 1,
                 now() - make_interval(mins => $5), now(), CASE WHEN $4 = 'sent' THEN now() END)",
    )
    .bind(job)
    .bind(Uuid::parse_str(account_id).unwrap())
    .bind(event)
    .bind(status)
    .bind(minutes_ago)
    .execute(&control.db.pool)
    .await
    .unwrap();
}

fn request(account: &str) -> ListMessagesRequest {
    ListMessagesRequest {
        account: account.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn messages_are_listed_newest_first_with_filters_and_paging() {
    let control = TestControl::start().await;
    let acme = control.create_account("acme").await;
    let globex = control.create_account("globex").await;
    insert_message(&control, &acme.id, "job-1", "evt-a", "sent", 30).await;
    insert_message(&control, &acme.id, "job-2", "evt-a", "failed", 20).await;
    insert_message(&control, &acme.id, "job-3", "evt-b", "queued", 10).await;
    insert_message(&control, &globex.id, "job-other", "evt-a", "sent", 5).await;
    let admin = control.admin();

    let all = admin
        .clone()
        .list_messages(request("acme"))
        .await
        .unwrap()
        .into_inner()
        .messages;
    let jobs: Vec<_> = all.iter().map(|message| message.job_id.as_str()).collect();
    assert_eq!(jobs, ["job-3", "job-2", "job-1"]);
    let sent = &all[2];
    assert_eq!(sent.status, MessageStatus::Sent as i32);
    assert_eq!(sent.to, "+5215512345678");
    assert_eq!(sent.account_id, acme.id);
    assert!(sent.sent_at_ms > 0);
    assert_eq!(all[0].sent_at_ms, 0);

    let failed = admin
        .clone()
        .list_messages(ListMessagesRequest {
            status: MessageStatus::Failed as i32,
            ..request("acme")
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].job_id, "job-2");

    let by_event = admin
        .clone()
        .list_messages(ListMessagesRequest {
            event_id: "evt-a".to_owned(),
            ..request("acme")
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(by_event.len(), 2);

    let first_page = admin
        .clone()
        .list_messages(ListMessagesRequest {
            limit: 2,
            ..request("acme")
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(first_page.len(), 2);
    let second_page = admin
        .clone()
        .list_messages(ListMessagesRequest {
            limit: 2,
            before_ms: first_page[1].created_at_ms,
            ..request("acme")
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    let jobs: Vec<_> = second_page
        .iter()
        .map(|message| message.job_id.as_str())
        .collect();
    assert_eq!(jobs, ["job-1"]);
}

#[tokio::test]
async fn messages_are_filtered_by_number_rule_and_time_range_in_the_database() {
    let control = TestControl::start().await;
    let acme = control.create_account("acme").await;
    insert_message(&control, &acme.id, "job-old", "evt-a", "sent", 300).await;
    insert_message(&control, &acme.id, "job-mid", "evt-b", "sent", 120).await;
    insert_message(&control, &acme.id, "job-new", "evt-c", "failed", 10).await;
    let account_id = Uuid::parse_str(&acme.id).unwrap();
    sqlx::query("UPDATE messages SET recipient = '+14155550100', rule_id = 'rule-b' WHERE job_id = 'job-mid' AND account_id = $1")
        .bind(account_id)
        .execute(&control.db.pool)
        .await
        .unwrap();
    let admin = control.admin();
    let jobs = |request: ListMessagesRequest| {
        let mut admin = admin.clone();
        async move {
            admin
                .list_messages(request)
                .await
                .unwrap()
                .into_inner()
                .messages
                .into_iter()
                .map(|message| message.job_id)
                .collect::<Vec<_>>()
        }
    };

    let by_number = jobs(ListMessagesRequest {
        to: "(415) 555-0100".to_owned(),
        ..request("acme")
    })
    .await;
    assert_eq!(by_number, ["job-mid"]);
    let by_partial_number = jobs(ListMessagesRequest {
        to: "55 1234".to_owned(),
        ..request("acme")
    })
    .await;
    assert_eq!(by_partial_number, ["job-new", "job-old"]);

    let by_rule = jobs(ListMessagesRequest {
        rule_id: "rule-b".to_owned(),
        ..request("acme")
    })
    .await;
    assert_eq!(by_rule, ["job-mid"]);

    let now_ms = chrono::Utc::now().timestamp_millis();
    let in_range = jobs(ListMessagesRequest {
        after_ms: now_ms - 200 * 60_000,
        before_ms: now_ms - 60 * 60_000,
        ..request("acme")
    })
    .await;
    assert_eq!(in_range, ["job-mid"]);
    let since = jobs(ListMessagesRequest {
        after_ms: now_ms - 200 * 60_000,
        status: MessageStatus::Sent as i32,
        ..request("acme")
    })
    .await;
    assert_eq!(since, ["job-mid"]);

    let refused = admin
        .clone()
        .list_messages(ListMessagesRequest {
            to: "abc".to_owned(),
            ..request("acme")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}
