//! `byok demo` plays the whole story and fails loudly if any step does not go as the customer guide says.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_the_whole_story_to_the_end() {
    byok_cli::demo::run(byok_cli::demo::DemoMode::Byok).await.expect("every step of the demo");
}

/// The same story with customer-managed keys: no role anywhere, the keys alone revoke and restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_the_cmk_story_to_the_end() {
    byok_cli::demo::run(byok_cli::demo::DemoMode::Cmk).await.expect("every step of the cmk demo");
}
