//! Docker unreachable is a clear, typed error naming the fix, never a hang or a panic.

use portwhy_harness::HarnessError;

#[test]
fn a_missing_socket_is_docker_unreachable_with_the_fix() {
    // One test in its own binary: nothing else in this process reads DOCKER_HOST concurrently.
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/portwhy/docker.sock");
    let err = portwhy_harness::connect().expect_err("no daemon behind a nonexistent socket");
    match &err {
        HarnessError::DockerUnreachable { host, reason } => {
            assert_eq!(host, "unix:///nonexistent/portwhy/docker.sock");
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("expected DockerUnreachable, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("DOCKER_HOST") && text.contains("dockerd"), "message names no fix: {text}");

    // The same for a TCP endpoint with nothing listening (same test: DOCKER_HOST is process-wide).
    std::env::set_var("DOCKER_HOST", "tcp://127.0.0.1:1");
    let err = portwhy_harness::connect().expect_err("nothing listens on port 1");
    assert!(matches!(err, HarnessError::DockerUnreachable { .. }), "{err:?}");
}
