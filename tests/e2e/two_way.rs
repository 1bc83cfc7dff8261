//! Two-way SMS through all four services: an SMS received by Telnyx becomes an
//! `sms.inbound` event of the account's inbound source, whose rule answers the
//! customer, once however often the provider repeats its callback; a STOP only
//! opts out and triggers no rule.

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::{
    GetAccountRequest, UpsertAccountRequest, UpsertRuleRequest, UpsertSourceRequest,
};
use foco_testkit::{FakeResponse, RecordedRequest, wait_for};

use crate::receipts::{post_telnyx, received, route_through_telnyx, wait_for_opt_out};
use crate::support::WAIT;

const CUSTOMER: &str = "+525512345679";
const OTHER_CUSTOMER: &str = "+525512345670";
const LATER_CUSTOMER: &str = "+525512345671";
const AUTO_REPLY: &str = "Gracias por escribir a Tienda Ale, te respondemos en un momento.";

/// A source `sms` with an auto-reply rule, named the account's inbound source.
async fn answer_inbound_sms(system: &TestSystem) {
    let mut admin = system.admin();
    admin
        .upsert_source(UpsertSourceRequest {
            account: ACCOUNT.to_owned(),
            name: "sms".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create sms source");
    admin
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "sms".to_owned(),
            name: "auto-reply".to_owned(),
            when: r#"event_type == "sms.inbound""#.to_owned(),
            to: vec!["{{ event.from }}".to_owned()],
            body: AUTO_REPLY.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create auto-reply rule");
    let account = admin
        .get_account(GetAccountRequest {
            account: ACCOUNT.to_owned(),
        })
        .await
        .expect("account")
        .into_inner();
    let updated = admin
        .upsert_account(UpsertAccountRequest {
            name: account.name,
            default_country: account.default_country,
            timezone: account.timezone,
            daily_sms_cap: account.daily_sms_cap,
            default_valid_for: account.default_valid_for,
            inbound_source: "sms".to_owned(),
        })
        .await
        .expect("name the inbound source")
        .into_inner();
    assert_eq!(updated.inbound_source, "sms");
}

fn sent_to(requests: &[RecordedRequest], to: &str) -> usize {
    requests
        .iter()
        .filter(|request| request.json()["to"] == to)
        .count()
}

#[tokio::test]
async fn a_rule_answers_an_inbound_sms_once_and_a_stop_triggers_nothing() {
    let system = TestSystem::start().await;
    let account_id = route_through_telnyx(&system).await;
    answer_inbound_sms(&system).await;
    // Each answer gets its own provider message id.
    system.provider.push_responses((1..=3).map(|n| {
        FakeResponse::status(
            200,
            format!(r#"{{"data": {{"id": "tx-reply-{n}", "parts": 1}}}}"#),
        )
    }));

    // Telnyx repeats a callback it thinks was lost: one SMS, one event.
    for _ in 0..2 {
        assert_eq!(
            post_telnyx(
                &system,
                &account_id,
                received("in-question", CUSTOMER, "¿Abren mañana?")
            )
            .await,
            200
        );
    }
    let requests = system.provider.wait_for_requests(1, WAIT).await;
    assert_eq!(requests[0].json()["to"], CUSTOMER);
    assert_eq!(requests[0].json()["text"], AUTO_REPLY);
    assert_eq!(requests[0].json()["from"], "+18445550001");

    // A STOP opts the number out and is no event: nothing answers it.
    assert_eq!(
        post_telnyx(
            &system,
            &account_id,
            received("in-stop", OTHER_CUSTOMER, "STOP")
        )
        .await,
        200
    );
    wait_for_opt_out(&system, OTHER_CUSTOMER).await;
    // A later message on the same source is answered: anything the STOP had
    // produced would have been handled by then.
    assert_eq!(
        post_telnyx(
            &system,
            &account_id,
            received("in-later", LATER_CUSTOMER, "Hola")
        )
        .await,
        200
    );
    let requests = wait_for("the later message to be answered", WAIT, || async {
        let requests = system.provider.requests();
        (sent_to(&requests, LATER_CUSTOMER) == 1).then_some(requests)
    })
    .await;
    assert_eq!(sent_to(&requests, CUSTOMER), 1, "one answer to one SMS");
    assert_eq!(requests.len(), 2, "nothing else was sent");
    assert!(
        system
            .messages()
            .await
            .iter()
            .all(|message| message.to != OTHER_CUSTOMER),
        "the STOP produced no message"
    );
    system.stop().await;
}
