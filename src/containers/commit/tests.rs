//! `--change` instructions: parsing and applying them to an image config.

use super::{Change, apply_changes, parse_change};
use crate::containers::ContainerError;
use crate::image::ImageConfig;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn commands_take_the_json_form_or_run_by_the_shell() {
    assert_eq!(
        parse_change(r#"CMD ["sleep", "10"]"#).unwrap(),
        Change::Cmd(strings(&["sleep", "10"]))
    );
    assert_eq!(
        parse_change("cmd echo hi && exit 3").unwrap(),
        Change::Cmd(strings(&["/bin/sh", "-c", "echo hi && exit 3"]))
    );
    assert_eq!(
        parse_change(r#"ENTRYPOINT ["python3", "-m"]"#).unwrap(),
        Change::Entrypoint(strings(&["python3", "-m"]))
    );
}

#[test]
fn env_and_label_take_pairs_with_quotes() {
    assert_eq!(
        parse_change(r#"ENV MODE=prod GREETING="hello world" X=a\ b"#).unwrap(),
        Change::Env(vec![
            ("MODE".into(), "prod".into()),
            ("GREETING".into(), "hello world".into()),
            ("X".into(), "a b".into()),
        ])
    );
    assert_eq!(
        parse_change("ENV GREETING hello world").unwrap(),
        Change::Env(vec![("GREETING".into(), "hello world".into())])
    );
    assert_eq!(
        parse_change("LABEL org.opencontainers.image.title=snap").unwrap(),
        Change::Label(vec![(
            "org.opencontainers.image.title".into(),
            "snap".into()
        )])
    );
}

#[test]
fn ports_volumes_and_plain_values() {
    assert_eq!(
        parse_change("EXPOSE 8080 53/udp").unwrap(),
        Change::Expose(strings(&["8080/tcp", "53/udp"]))
    );
    assert_eq!(
        parse_change(r#"VOLUME ["/data"]"#).unwrap(),
        Change::Volume(strings(&["/data"]))
    );
    assert_eq!(
        parse_change("VOLUME /a /b").unwrap(),
        Change::Volume(strings(&["/a", "/b"]))
    );
    assert_eq!(
        parse_change("USER 1000:1000").unwrap(),
        Change::User("1000:1000".into())
    );
    assert_eq!(
        parse_change("WORKDIR /srv").unwrap(),
        Change::Workdir("/srv".into())
    );
    assert_eq!(
        parse_change("STOPSIGNAL SIGUSR1").unwrap(),
        Change::StopSignal("SIGUSR1".into())
    );
}

#[test]
fn bad_changes_say_what_is_wrong() {
    for (text, reason) in [
        ("RUN echo hi", "unknown instruction"),
        ("CMD", "it has no arguments"),
        ("CMD [\"unclosed\"", "not a JSON array of strings"),
        (
            "EXPOSE http",
            "use a port number with an optional /tcp, /udp or /sctp",
        ),
        (
            "EXPOSE 80/icmp",
            "use a port number with an optional /tcp, /udp or /sctp",
        ),
        ("WORKDIR srv", "the directory must be absolute"),
        ("LABEL title", "use LABEL k=v"),
        ("ENV A=\"open", "use ENV K=V or ENV K V"),
    ] {
        match parse_change(text) {
            Err(ContainerError::BadChange {
                change,
                reason: got,
            }) => {
                assert_eq!(change, text);
                assert_eq!(got, reason, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn changes_apply_in_order_and_an_entrypoint_clears_the_inherited_cmd() {
    let mut config = ImageConfig::empty();
    config.config.env = strings(&["PATH=/bin", "MODE=dev"]);
    config.config.cmd = Some(strings(&["sh"]));
    let changes = [
        parse_change("ENV MODE=prod EXTRA=1").unwrap(),
        parse_change("ENTRYPOINT [\"sleep\"]").unwrap(),
        parse_change("EXPOSE 80").unwrap(),
        parse_change("LABEL a=b").unwrap(),
        parse_change("WORKDIR /srv").unwrap(),
    ];
    apply_changes(&mut config, &changes);
    let runtime = &config.config;
    assert_eq!(runtime.env, strings(&["PATH=/bin", "MODE=prod", "EXTRA=1"]));
    assert_eq!(runtime.entrypoint, Some(strings(&["sleep"])));
    assert_eq!(runtime.cmd, None);
    assert!(runtime.exposed_ports.contains_key("80/tcp"));
    assert_eq!(runtime.labels.get("a").map(String::as_str), Some("b"));
    assert_eq!(runtime.working_dir.as_deref(), Some("/srv"));

    // With a CMD among the changes, both stay, whatever their order.
    let mut config = ImageConfig::empty();
    apply_changes(
        &mut config,
        &[
            parse_change("CMD [\"10\"]").unwrap(),
            parse_change("ENTRYPOINT [\"sleep\"]").unwrap(),
        ],
    );
    assert_eq!(config.config.cmd, Some(strings(&["10"])));
}
