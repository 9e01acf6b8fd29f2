//! A root filesystem into the daemon: `tar -c` streamed into `POST /images/create?fromSrc=-`.

use super::*;

pub(super) type TarBody =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// `tar -c .` of `dir` as a byte stream; `as_root` makes root own every file (binaries unpacked
/// by another user), otherwise owners are kept (a root filesystem).
pub(super) fn tar_stream(dir: &Path, as_root: bool) -> Result<(tokio::process::Child, TarBody), String> {
    let owner: &[&str] = if as_root { &["--owner=0", "--group=0"] } else { &[] };
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("--numeric-owner")
        .args(owner)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn tar: {e}"))?;
    let stdout = tar.stdout.take().ok_or("tar has no stdout")?;
    Ok((tar, Box::pin(byte_stream(stdout))))
}

pub(super) fn byte_stream(
    r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 1 << 20];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

pub(super) async fn finish_tar(tar: &mut tokio::process::Child) -> Result<(), String> {
    let status = tar.wait().await.map_err(|e| format!("tar: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut s) = tar.stderr.take() {
        let _ = s.read_to_string(&mut err).await;
    }
    Err(format!("tar exited {status}: {err}"))
}

/// Streams `tar -C root -c .` into `POST /images/create?fromSrc=-` (what `docker import` does).
pub(super) async fn import_rootfs(
    docker: &Docker,
    root: &Path,
    tag: &str,
    changes: Vec<String>,
    engine: &str,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let (mut tar, body) = tar_stream(root, false)?;
    let (repo, t) = tag.split_once(':').ok_or("tag without ':'")?;
    let options = CreateImageOptionsBuilder::new().from_src("-").repo(repo).tag(t).changes(changes).build();
    progress(&format!("{engine}: importing root filesystem as {tag}"));
    let mut stream = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut last_err = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    last_err = Some(detail);
                }
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    let tar_result = finish_tar(&mut tar).await;
    if let Some(e) = last_err {
        return Err(format!("import: {e}"));
    }
    tar_result
}
