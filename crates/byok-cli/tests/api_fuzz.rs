//! The OpenAPI document is exact: schemathesis (`--checks all`) against a real `byok serve`
//! with an active tenant finds no failure and no server error, with the service token over
//! the data plane and the operator token over everything else. The driver is
//! `tests/api_fuzz/run.py`; what is adjusted for this API, and why, is in
//! `crates/byok-server/schemathesis.toml`.

#[test]
fn schemathesis_finds_nothing_against_the_openapi_document() {
    let venv = byok_testkit::aws::venv();
    let schemathesis = venv.join("bin/schemathesis");
    assert!(schemathesis.exists(), "no schemathesis in {}: run scripts/setup-venv", venv.display());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_fuzz/run.py");
    let status = std::process::Command::new(venv.join("bin/python"))
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_byok"))
        .arg(&schemathesis)
        .args(["--max-examples", "50"])
        .status()
        .expect("python");
    assert!(status.success(), "schemathesis found failures (its report is above)");
}
