//! `foco messages show`: a message's story from control's GetMessage.

use serde_json::Value;

use crate::harness::{ADMIN_KEY, applied_control_with_streams, run_foco};

#[tokio::test]
async fn messages_show_tells_a_delayed_messages_story_as_text_and_json() {
    let control = applied_control_with_streams().await;
    let sent = run_foco(
        &control,
        ADMIN_KEY,
        &[
            "send",
            "--to",
            "+525512345678",
            "--body",
            "Tu cita es mañana",
            "--delay",
            "2h",
            "--metadata",
            "cita=A-7",
            "-o",
            "json",
        ],
    )
    .await
    .expect("foco send");
    let sent: Value = serde_json::from_str(&sent).unwrap();
    let message_id = sent["message_id"].as_str().expect("message id");

    let story: Value = serde_json::from_str(
        &run_foco(
            &control,
            ADMIN_KEY,
            &["messages", "show", message_id, "-o", "json"],
        )
        .await
        .expect("foco messages show"),
    )
    .unwrap();
    assert_eq!(story["status"], "scheduled", "{story}");
    assert_eq!(story["origin"], "api");
    assert_eq!(story["metadata"]["cita"], "A-7");
    assert_eq!(story["scheduled"]["state"], "pending");
    assert_eq!(
        story["attempts"],
        Value::Null,
        "not claimed by the sender yet"
    );

    let text = run_foco(&control, ADMIN_KEY, &["messages", "show", message_id])
        .await
        .unwrap();
    for line in [
        format!("message   {message_id}"),
        "status    scheduled".to_owned(),
        "made by   SendMessage".to_owned(),
        "  cita = A-7".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} in\n{text}");
    }
    assert!(text.contains("scheduled due "), "{text}");

    let missing = run_foco(&control, ADMIN_KEY, &["messages", "show", "job_nope"])
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
}
