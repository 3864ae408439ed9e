//! `portfolio-service config hash-key`: the entry it prints is what `[auth]` accepts.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::process::{Command, Stdio};

fn hash_key(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portfolio-service"))
        .args(["config", "hash-key"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn hex_sha256(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_key_from_stdin_becomes_a_role_name_digest_entry() {
    let output = hash_key(&["--role", "admin", "--name", "ops"], "correct-horse-battery\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.trim(), format!("entry: admin:ops:{}", hex_sha256("correct-horse-battery")));
}

#[test]
fn a_generated_key_is_printed_with_its_entry() {
    let output = hash_key(&["--generate"], "");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.lines().find_map(|l| l.strip_prefix("key:")).unwrap().trim();
    assert_eq!(key.len(), 64);
    assert!(stdout.contains(&format!("entry: write:default:{}", hex_sha256(key))), "{stdout}");
}

#[test]
fn short_keys_are_refused() {
    let output = hash_key(&[], "short\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 16"));
}
