//! The batched statements' answers, row by row, over the real Postgres.

use foco_runtime::postgres::{FreshRowsFirst, InsertForm};
use foco_sender::store::{
    Claim, ClaimRequest, OutcomeRecord, Status, StoreError, claim_batch, claim_fresh_batch,
    record_outcomes,
};

use crate::harness::TestEnv;

fn request(env: &TestEnv, job_id: &str) -> ClaimRequest {
    ClaimRequest {
        job_id: job_id.to_owned(),
        account_id: env.account.id.parse().unwrap(),
        event_id: format!("evt_{job_id}"),
        source_id: String::new(),
        rule_id: String::new(),
        recipient: "+525512345678".to_owned(),
        body: "hola".to_owned(),
        provider: "default".to_owned(),
        sender_id: String::new(),
        priority: 1,
        expired: String::new(),
    }
}

#[tokio::test]
async fn each_outcome_of_a_batch_answers_whether_its_own_row_was_still_held() {
    let env = TestEnv::start().await;
    let jobs = ["job_store_a", "job_store_b", "job_store_c"];
    let requests: Vec<ClaimRequest> = jobs.iter().map(|job| request(&env, job)).collect();
    let claims = claim_batch(env.pool(), &requests).await.unwrap();
    for claim in claims {
        assert!(matches!(
            claim,
            Ok(Some(Claim::Claimed { attempts: 1, .. }))
        ));
    }
    // Another delivery finished the middle one meanwhile.
    sqlx::query("UPDATE messages SET status = 'failed', error = 'elsewhere' WHERE job_id = $1")
        .bind(jobs[1])
        .execute(env.pool())
        .await
        .unwrap();

    // Given in another order than the rows', to tell positions from ids.
    let order = [1, 2, 0];
    let records: Vec<OutcomeRecord> = order
        .iter()
        .map(|&index| {
            let mut record = OutcomeRecord::new(
                jobs[index],
                Status::Sent,
                format!(r#"{{"outcome":"sent","detail":"pm-{index}"}}"#),
            );
            record.provider_message_id = format!("pm-{index}");
            record
        })
        .collect();
    let mut connection = env.pool().acquire().await.unwrap();
    let held = record_outcomes(&mut connection, &records).await.unwrap();
    assert_eq!(held, vec![false, true, true]);

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT job_id, status, provider_message_id FROM messages WHERE job_id = ANY($1) ORDER BY job_id",
    )
    .bind(&jobs[..])
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "job_store_a".to_owned(),
                "sent".to_owned(),
                "pm-0".to_owned()
            ),
            ("job_store_b".to_owned(), "failed".to_owned(), String::new()),
            (
                "job_store_c".to_owned(),
                "sent".to_owned(),
                "pm-2".to_owned()
            ),
        ]
    );
}

/// A job already stored, a job twice, an account that does not exist, an
/// opted-out recipient, a job past its deadline and a fresh job; and what each
/// position must be answered.
async fn mixed_claims(env: &TestEnv) -> (Vec<ClaimRequest>, [&'static str; 7]) {
    let opted_out = "+525598765432";
    sqlx::query("INSERT INTO opt_outs (account_id, phone, source) VALUES ($1, $2, 'test')")
        .bind(env.account.id.parse::<uuid::Uuid>().unwrap())
        .bind(opted_out)
        .execute(env.pool())
        .await
        .unwrap();
    claim_batch(env.pool(), &[request(env, "job_claim_existing")])
        .await
        .unwrap();

    let mut no_account = request(env, "job_claim_no_account");
    no_account.account_id = uuid::Uuid::new_v4();
    let mut to_opted_out = request(env, "job_claim_opted_out");
    to_opted_out.recipient = opted_out.to_owned();
    let mut past_deadline = request(env, "job_claim_expired");
    past_deadline.expired = "came too late".to_owned();
    let requests = vec![
        request(env, "job_claim_existing"),
        request(env, "job_claim_twice"),
        no_account,
        request(env, "job_claim_twice"),
        to_opted_out,
        past_deadline,
        request(env, "job_claim_fresh"),
    ];
    // The second copy of a job id saw the row the first created.
    let expected = [
        "exists",
        "claimed",
        "no account",
        "exists",
        "opted out",
        "expired",
        "claimed",
    ];
    (requests, expected)
}

fn describe(answers: &[Result<Option<Claim>, StoreError>]) -> Vec<&'static str> {
    answers
        .iter()
        .map(|answer| match answer {
            Ok(None) => "exists",
            Ok(Some(Claim::Claimed { attempts: 1, .. })) => "claimed",
            Ok(Some(Claim::OptedOut)) => "opted out",
            Ok(Some(Claim::PastDeadline)) => "expired",
            Err(StoreError::AccountMissing) => "no account",
            other => panic!("unexpected answer {other:?}"),
        })
        .collect()
}

async fn stored_count(env: &TestEnv, job_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_of_claims_answers_each_position_once() {
    let env = TestEnv::start().await;
    let (requests, expected) = mixed_claims(&env).await;
    let answers = claim_batch(env.pool(), &requests).await.unwrap();
    assert_eq!(describe(&answers), expected);
    assert_eq!(stored_count(&env, "job_claim_no_account").await, 0);
}

#[tokio::test]
async fn a_plain_claim_that_meets_a_stored_job_is_answered_as_the_arbitrated_one_would() {
    let env = TestEnv::start().await;
    let mut connection = env.pool().acquire().await.unwrap();

    // Only new jobs: the plain form claims them all and stays the choice.
    let forms = FreshRowsFirst::default();
    let fresh = [request(&env, "job_plain_a"), request(&env, "job_plain_b")];
    let answers = claim_fresh_batch(&mut connection, &fresh, &forms)
        .await
        .unwrap();
    assert_eq!(describe(&answers), ["claimed", "claimed"]);
    assert_eq!(forms.next_form(), InsertForm::Plain);

    // A stored job and a job twice: the plain statement fails and stores
    // nothing, the arbitrated one answers every position, and the next
    // batches arbitrate straight away.
    let (requests, expected) = mixed_claims(&env).await;
    let answers = claim_fresh_batch(&mut connection, &requests, &forms)
        .await
        .unwrap();
    assert_eq!(describe(&answers), expected);
    assert_eq!(forms.next_form(), InsertForm::Arbitrated);
    assert_eq!(stored_count(&env, "job_claim_no_account").await, 0);
    assert_eq!(stored_count(&env, "job_claim_twice").await, 1);
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM messages WHERE job_id = 'job_claim_fresh'")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("sending", 1));
}
