//! `sandbox serve` in a child process, the global `--sandbox` flag, and `completions`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use inkeep_analytics_sandbox::SandboxConfig;
use serde_json::Value;

use crate::support::{Running, Scratch, Server, cli, id_of, lines, parse, read, run};

/// Waits for the line in which `sandbox serve` announces its address, and returns the base URL.
#[track_caller]
fn announced_url(server: &mut Running) -> String {
    let Some(stderr) = server.take_stderr() else {
        panic!("stderr of the sandbox is not piped");
    };
    let (lines, received) = mpsc::channel();
    // The thread ends when the child's stderr closes, which killing the child does.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let line = match received.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line,
        Err(error) => panic!("the sandbox announced nothing: {error}"),
    };
    let Some(url) = line
        .strip_prefix("sandbox listening on ")
        .and_then(|rest| rest.split_whitespace().next())
    else {
        panic!("unexpected announcement: {line}");
    };
    assert!(
        line.contains("\"sk-sandbox\""),
        "the announcement names the sandbox key: {line}"
    );
    url.to_string()
}

#[test]
fn sandbox_serve_answers_until_killed() {
    let mut serve = cli();
    serve
        .args([
            "sandbox",
            "serve",
            "--port",
            "0",
            "--seed",
            "7",
            "--conversations",
            "12",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = Running::spawn(&mut serve);
    let url = announced_url(&mut server);
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "the bound port is announced: {url}"
    );

    let page: Value = parse(
        run(cli().args([
            "--base-url",
            &url,
            "--api-key",
            "sk-sandbox",
            "conversations",
            "list",
            "--limit",
            "100",
        ]))
        .ok()
        .as_bytes(),
    );
    assert_eq!(
        page["total"], 12,
        "--conversations sets the size of the data"
    );
    assert_eq!(page["conversations"].as_array().map(Vec::len), Some(12));

    // The same seed and size give the same data as a sandbox started in-process.
    let same = Server::start_with(SandboxConfig {
        seed: 7,
        conversations: 12,
        ..SandboxConfig::default()
    });
    let expected: Value = parse(&same.get("/conversations?limit=100").1);
    let ids = |page: &Value| -> Vec<Value> {
        page["conversations"]
            .as_array()
            .map(|list| list.iter().map(|c| c["id"].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        ids(&page),
        ids(&expected),
        "the served data is an in-process sandbox's with the same seed"
    );

    server.kill();
    let output = run(cli().args([
        "--base-url",
        &url,
        "--api-key",
        "sk-sandbox",
        "--retries",
        "0",
        "conversations",
        "list",
    ]));
    output.exits(6);
}

#[test]
fn sandbox_serve_on_a_taken_port_exits_2() {
    let taken = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind: {error}"),
    };
    let port = match taken.local_addr() {
        Ok(address) => address.port(),
        Err(error) => panic!("no address: {error}"),
    };
    let output = run(cli().args(["sandbox", "serve", "--port", &port.to_string()]));
    output.exits(2);
    assert!(
        output
            .error_line()
            .contains(&format!("cannot serve the sandbox on 127.0.0.1:{port}")),
        "{}",
        output.stderr
    );
    drop(taken);
}

#[test]
fn the_sandbox_flag_exports_with_no_key_and_no_network() {
    // `cli()` removes INKEEP_ANALYTICS_API_KEY and INKEEP_ANALYTICS_BASE_URL: nothing but the flag.
    let output = run(cli().args(["--sandbox", "conversations", "export"]));
    let exported = lines(output.ok().as_bytes());
    assert_eq!(
        exported.len(),
        inkeep_analytics_sandbox::DEFAULT_CONVERSATIONS
    );
    // Byte for byte what a default sandbox serves.
    let reference = Server::start_with(SandboxConfig::default()).raw_conversations();
    assert_eq!(reference.len(), exported.len());
    for line in &exported {
        assert_eq!(
            reference.get(&id_of(line)),
            Some(line),
            "exported as the server sent it"
        );
    }
}

#[test]
fn the_sandbox_flag_ignores_settings_from_the_environment() {
    // A developer's own key and URL for the real API stay unused, and unreached.
    let mut command = cli();
    command
        .env("INKEEP_ANALYTICS_API_KEY", "sk-developer-own-key")
        .env("INKEEP_ANALYTICS_BASE_URL", "http://127.0.0.1:9")
        .args(["--sandbox", "feedback", "export", "--page-size", "7"]);
    let output = run(&mut command);
    let exported = lines(output.ok().as_bytes());
    assert!(!exported.is_empty());
    assert!(!output.stderr.contains("sk-developer-own-key"));
    // Given on the command line, they conflict with the flag.
    for flag in [["--api-key", "sk-x"], ["--base-url", "http://127.0.0.1:9"]] {
        let output = run(cli()
            .arg("--sandbox")
            .args(flag)
            .args(["conversations", "list"]));
        output.exits(2);
        assert!(
            output.stderr.contains("cannot be used with"),
            "{}",
            output.stderr
        );
    }
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef inkeep-analytics"),
        ("fish", "complete -c inkeep-analytics"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer"),
    ] {
        let script = run(cli().args(["completions", shell])).ok();
        assert!(script.contains(marker), "{shell}: {marker:?} is missing");
        for word in [
            "conversations",
            "export",
            "weekly-users",
            "page-size",
            "where",
        ] {
            assert!(script.contains(word), "{shell}: {word:?} is missing");
        }
    }
    let scratch = Scratch::new();
    let path = scratch.join("inkeep-analytics.bash");
    let printed = run(cli().args(["completions", "bash", "--output"]).arg(&path)).ok();
    assert!(printed.is_empty());
    assert!(String::from_utf8_lossy(&read(&path)).contains("complete -F"));
}
