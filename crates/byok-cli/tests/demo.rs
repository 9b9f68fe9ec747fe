//! `byok demo` plays the whole story and fails loudly if any step does not go as the customer guide says.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_the_whole_story_to_the_end() {
    byok_cli::demo::run().await.expect("every step of the demo");
}
