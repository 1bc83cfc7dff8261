//! Message templates over the real Postgres and NATS: saved only when they
//! parse (the refusal names line and column), rendered by SendMessage(s) into
//! the job's body, refused when a variable is missing, and previewed with
//! their encoding and segments.

use foco_proto::v1::{
    DeleteTemplateRequest, GetTemplateRequest, ListTemplatesRequest, PreviewTemplateRequest,
    SendMessageRequest, SendMessagesRequest, UpsertTemplateRequest, send_message_result,
};
use tonic::Code;

use crate::messaging::{Setup, bad_field, setup};

fn template(name: &str, body: &str) -> UpsertTemplateRequest {
    UpsertTemplateRequest {
        name: name.to_owned(),
        body: body.to_owned(),
        ..Default::default()
    }
}

fn templated(to: &str, name: &str, variables: &[(&str, &str)]) -> SendMessageRequest {
    SendMessageRequest {
        to: to.to_owned(),
        template: name.to_owned(),
        variables: variables
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..Default::default()
    }
}

async fn save(setup: &Setup, request: UpsertTemplateRequest) -> foco_proto::v1::Template {
    setup
        .messaging()
        .upsert_template(request)
        .await
        .expect("save template")
        .into_inner()
}

#[tokio::test]
async fn an_invalid_template_is_refused_with_its_line_and_column() {
    let setup = setup().await;
    let refused = setup
        .messaging()
        .upsert_template(template(
            "otp",
            "Hola {{ name }}\nTu código es {{ code | }}",
        ))
        .await
        .expect_err("a template that does not parse is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_field(&refused), "body");
    assert!(
        refused
            .message()
            .contains("body is not a valid template (line 2, column 24)"),
        "{}",
        refused.message()
    );
    let listed = setup
        .messaging()
        .list_templates(ListTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.templates.is_empty());

    for (request, field) in [
        (template("Bad Name", "hola"), "name"),
        (template("otp", "  "), "body"),
        (
            UpsertTemplateRequest {
                encoding: "latin1".to_owned(),
                ..template("otp", "hola")
            },
            "encoding",
        ),
    ] {
        let refused = setup
            .messaging()
            .upsert_template(request)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(bad_field(&refused), field, "{}", refused.message());
    }
}

#[tokio::test]
async fn templates_are_saved_listed_read_and_deleted_by_name() {
    let setup = setup().await;
    let saved = save(
        &setup,
        template("otp", "Tu código es {{ code }}, {{ name }}"),
    )
    .await;
    assert_eq!(saved.variables, ["code", "name"]);
    assert_eq!(
        saved.warnings.len(),
        1,
        "'ó' forces UCS-2: {:?}",
        saved.warnings
    );
    let replaced = save(
        &setup,
        UpsertTemplateRequest {
            encoding: "gsm7".to_owned(),
            ..template("otp", "Tu código es {{ code }}")
        },
    )
    .await;
    assert_eq!(replaced.id, saved.id);
    assert_eq!(replaced.variables, ["code"]);
    assert!(replaced.warnings.is_empty());

    let read = setup
        .messaging()
        .get_template(GetTemplateRequest {
            name: "otp".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.body.as_str(), read.encoding.as_str()),
        ("Tu código es {{ code }}", "gsm7")
    );

    let deleted = setup
        .messaging()
        .delete_template(DeleteTemplateRequest {
            name: "otp".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    let missing = setup
        .messaging()
        .get_template(GetTemplateRequest {
            name: "otp".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn a_templated_send_stores_and_publishes_the_rendering() {
    let setup = setup().await;
    save(
        &setup,
        UpsertTemplateRequest {
            encoding: "gsm7".to_owned(),
            ..template(
                "otp",
                "Hola {{ name | first_name }}, tu código es {{ code }}",
            )
        },
    )
    .await;
    let sent = setup
        .messaging()
        .send_message(templated(
            "55 1234 5678",
            "otp",
            &[("name", "ALE ruiz"), ("code", "4821")],
        ))
        .await
        .expect("send")
        .into_inner();
    assert_eq!((sent.encoding.as_str(), sent.segments), ("GSM-7", 1));
    let job = setup.last_job().await;
    assert_eq!(job.job_id, sent.message_id);
    assert_eq!(job.body, "Hola Ale, tu codigo es 4821");

    // Delayed: the scheduled job's stored body is the rendering too.
    let mut delayed = templated("+525512345678", "otp", &[("name", "Bea"), ("code", "1")]);
    delayed.delay = "2h".to_owned();
    delayed.encoding = "unicode".to_owned();
    let scheduled = setup
        .messaging()
        .send_message(delayed)
        .await
        .expect("delayed send")
        .into_inner();
    let body: String = sqlx::query_scalar("SELECT body FROM scheduled_jobs WHERE job_id = $1")
        .bind(&scheduled.message_id)
        .fetch_one(&setup.control.db.pool)
        .await
        .unwrap();
    assert_eq!(body, "Hola Bea, tu código es 1");
}

#[tokio::test]
async fn a_missing_variable_or_an_unknown_template_sends_nothing() {
    let setup = setup().await;
    save(&setup, template("otp", "Tu código es {{ code }}")).await;
    let refused = setup
        .messaging()
        .send_message(templated("+525512345678", "otp", &[("name", "Ale")]))
        .await
        .expect_err("a missing variable is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_field(&refused), "variables");
    assert!(
        refused
            .message()
            .contains("needs variables that were not given: code"),
        "{}",
        refused.message()
    );

    let unknown = setup
        .messaging()
        .send_message(templated("+525512345678", "welcome", &[]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut both = templated("+525512345678", "otp", &[("code", "1")]);
    both.body = "hola".to_owned();
    let refused = setup.messaging().send_message(both).await.unwrap_err();
    assert_eq!(bad_field(&refused), "body");

    // In a batch, each message answers for itself.
    let batch = setup
        .messaging()
        .send_messages(SendMessagesRequest {
            messages: vec![
                templated("+525512345678", "otp", &[("code", "77")]),
                templated("+525512345679", "otp", &[]),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        batch.results[0].result,
        Some(send_message_result::Result::Message(_))
    ));
    let Some(send_message_result::Result::Error(error)) = &batch.results[1].result else {
        panic!("the message without its variable is refused: {batch:?}");
    };
    assert_eq!(
        (error.code, error.field.as_str()),
        (Code::InvalidArgument as i32, "variables")
    );
    assert_eq!(setup.stream_messages(setup.names.sms_stream()).await, 1);
    assert_eq!(setup.last_job().await.body, "Tu código es 77");
}

#[tokio::test]
async fn a_preview_answers_the_text_its_encoding_and_segments() {
    let setup = setup().await;
    save(&setup, template("promo", "{{ name }}: {{ text }}")).await;
    let long_text = "a".repeat(160);
    let stored = setup
        .messaging()
        .preview_template(PreviewTemplateRequest {
            name: "promo".to_owned(),
            variables: [
                ("name".to_owned(), "Ale".to_owned()),
                ("text".to_owned(), long_text.clone()),
            ]
            .into(),
            ..Default::default()
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(stored.text, format!("Ale: {long_text}"));
    assert_eq!((stored.encoding.as_str(), stored.segments), ("GSM-7", 2));
    assert_eq!(stored.characters, 165);

    let given = setup
        .messaging()
        .preview_template(PreviewTemplateRequest {
            body: "Tu código es {{ code }}".to_owned(),
            variables: [("code".to_owned(), "4821".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((given.encoding.as_str(), given.segments), ("UCS-2", 1));
    assert_eq!(given.ucs2_characters, ["ó"]);

    let missing = setup
        .messaging()
        .preview_template(PreviewTemplateRequest {
            name: "promo".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(
        missing.message().contains("name, text"),
        "{}",
        missing.message()
    );
    let unknown = setup
        .messaging()
        .preview_template(PreviewTemplateRequest {
            name: "nope".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
