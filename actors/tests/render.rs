//! The renderer against the real `chromium-headless-shell`: metadata reaching the page, frame
//! accuracy of CSS and JS animation, hostile metadata, repeats, browser crashes, hung pages,
//! bad templates, network isolation and the built-in template.
//!
//! Set `HEADEND_RENDER_DUMP=/some/dir` to write the frames of some tests there as PPM files.

use headend_actors::frame::{PageFrame, RgbaFrame};
use headend_actors::render::{BrowserSettings, PageData, RenderError, RenderJob, RenderStats, Renderer, Template, MAX_IMAGE_BYTES};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------
// Harness

struct Harness {
    renderer: Renderer,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        Self::with_timeouts(Duration::from_secs(10), Duration::from_secs(5)).await
    }

    async fn with_timeouts(load: Duration, frame: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = BrowserSettings::new(dir.path().join("profiles"));
        settings.load_timeout = load;
        settings.frame_timeout = frame;
        let renderer = Renderer::start(settings).await.expect("chromium-headless-shell starts");
        Harness { renderer, dir }
    }

    /// Writes a template file and returns it as a `Template::File`.
    fn template(&self, name: &str, html: &str) -> Template {
        let path = self.dir.path().join(name);
        std::fs::write(&path, html).unwrap();
        Template::File(path)
    }

    async fn render(&self, job: RenderJob) -> (Result<RenderStats, RenderError>, Vec<PageFrame>) {
        render_on(&self.renderer, job, CancellationToken::new()).await
    }
}

async fn render_on(renderer: &Renderer, job: RenderJob, cancel: CancellationToken) -> (Result<RenderStats, RenderError>, Vec<PageFrame>) {
    let (tx, mut rx) = mpsc::channel(8);
    let collect = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(f) = rx.recv().await {
            frames.push(f);
        }
        frames
    });
    let result = renderer.render(job, tx, cancel).await;
    (result, collect.await.unwrap())
}

fn job(template: Template, data: PageData, width: u32, height: u32, fps: u32, frames: u64) -> RenderJob {
    let mut job = RenderJob::new(template, data, width, height, fps, frames);
    job.clock_origin_ms = Some(1_700_000_000_000);
    job
}

/// The picture shown at frame `k` (the last `New` at or before it).
fn picture(frames: &[PageFrame], k: usize) -> &RgbaFrame {
    frames[..=k]
        .iter()
        .rev()
        .find_map(|f| match f {
            PageFrame::New(p) => Some(p.as_ref()),
            PageFrame::Repeat => None,
        })
        .expect("frame 0 is New")
}

/// Number of pixels of row `y` (from x = 0) that are close to `rgb`.
fn run_of(frame: &RgbaFrame, y: u32, rgb: [u8; 3]) -> u32 {
    (0..frame.width).take_while(|&x| close(frame.pixel(x, y), rgb)).count() as u32
}

fn close(px: [u8; 4], rgb: [u8; 3]) -> bool {
    px[..3].iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= 8)
}

fn assert_delivery(frames: &[PageFrame], expected: u64) {
    assert_eq!(frames.len() as u64, expected, "exactly the job's frames are delivered");
    assert!(matches!(frames[0], PageFrame::New(_)), "frame 0 is New");
    for f in frames {
        if let PageFrame::New(p) = f {
            assert!(p.is_well_formed());
        }
    }
}

fn dump(name: &str, frames: &[PageFrame], which: &[usize]) {
    let Ok(dir) = std::env::var("HEADEND_RENDER_DUMP") else { return };
    for &k in which {
        let p = picture(frames, k);
        let mut ppm = format!("P6\n{} {}\n255\n", p.width, p.height).into_bytes();
        for px in p.data.chunks_exact(4) {
            ppm.extend_from_slice(&px[..3]);
        }
        std::fs::write(Path::new(&dir).join(format!("{name}-{k}.ppm")), ppm).unwrap();
    }
}

fn item(title: &str) -> PageData {
    PageData {
        title: title.into(),
        artist: "The Testers".into(),
        album: "Deterministic Frames".into(),
        genre: "Electronic".into(),
        duration_ms: 200_000,
        artwork: None,
        channel: "Test FM".into(),
        logo: None,
        media_id: "media-1".into(),
    }
}

/// A tiny HTTP server on 127.0.0.1 recording request paths; `/404` answers 404, `/page`
/// serves `page`, anything else 200 "ok". WebSocket upgrades are recorded and closed.
struct TestServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    async fn start(page: &str) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (log, page) = (requests.clone(), page.to_string());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (log, page) = (log.clone(), page.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(path.clone());
                    if head.to_ascii_lowercase().contains("upgrade: websocket") {
                        return;
                    }
                    let (status, body) = match path.as_str() {
                        "/404" => ("404 Not Found", "<html><body>missing</body></html>".to_string()),
                        "/page" => ("200 OK", page),
                        _ => ("200 OK", "ok".to_string()),
                    };
                    let kind = if path == "/page" || path == "/404" { "text/html" } else { "text/plain" };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        TestServer { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------
// Metadata, frame accuracy, hostile metadata, repeats

/// Paints the background with the colour named in `genre` and shows the title, when the
/// metadata arrives (`headend:item`).
const COLOUR_PAGE: &str = r#"<!DOCTYPE html><html><body style="margin:0;background:#000">
<div id="t" style="color:#fff;font:40px sans-serif;position:absolute;left:0;top:300px"></div>
<script>
addEventListener('headend:item', (e) => {
  document.body.style.background = e.detail.genre;
  document.getElementById('t').textContent = e.detail.title;
});
</script></body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_reaches_the_page() {
    let h = Harness::start().await;
    let mut data = item("Hello");
    data.genre = "rgb(10, 200, 30)".into();
    let (res, frames) = h.render(job(h.template("colour.html", COLOUR_PAGE), data, 640, 360, 25, 5)).await;
    let stats = res.unwrap();
    assert_delivery(&frames, 5);
    assert_eq!(stats.frames, 5);
    let f = picture(&frames, 0);
    assert_eq!((f.width, f.height), (640, 360));
    assert!(close(f.pixel(600, 20), [10, 200, 30]), "background painted from metadata: {:?}", f.pixel(600, 20));
    // The title's white glyphs are on the picture where the page put them.
    let white = (0..200).flat_map(|x| (300..340).map(move |y| (x, y))).filter(|&(x, y)| close(f.pixel(x, y), [255, 255, 255])).count();
    assert!(white > 50, "title text drawn ({white} white pixels)");
    h.renderer.shutdown().await;
}

/// Three bars: red follows a CSS animation (0 to 1000 px in 2 s), green follows
/// `headend.position_ms` (px = ms / 4), blue follows `performance.now()` read in a virtual
/// `setInterval` (px = ms / 4), and the virtual `Date` is checked at frame 0.
const ANIMATION_PAGE: &str = r#"<!DOCTYPE html><html><head><style>
body { margin: 0; background: #000; }
#css { height: 20px; background: rgb(255,0,0); animation: grow 2s linear forwards; }
@keyframes grow { from { width: 0px } to { width: 1000px } }
#pos { height: 20px; width: 0; background: rgb(0,255,0); }
#clk { height: 20px; width: 0; background: rgb(0,0,255); }
#date { height: 20px; width: 0; background: rgb(255,255,0); }
</style></head><body><div id="css"></div><div id="pos"></div><div id="clk"></div><div id="date"></div>
<script>
addEventListener('headend:tick', (e) => {
  document.getElementById('pos').style.width = (e.detail.position_ms / 4) + 'px';
});
setInterval(() => {
  document.getElementById('clk').style.width = Math.floor(performance.now() / 4) + 'px';
}, 40);
// Date.now() - clock origin, in px (ms / 4).
requestAnimationFrame(function f(ts) {
  document.getElementById('date').style.width = Math.floor((Date.now() - 1700000000000) / 4) + 'px';
  requestAnimationFrame(f);
});
</script></body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animation_lands_on_exact_frame_times() {
    let h = Harness::start().await;
    let (res, frames) = h.render(job(h.template("anim.html", ANIMATION_PAGE), item("Anim"), 1280, 120, 25, 60)).await;
    let stats = res.unwrap();
    assert_delivery(&frames, 60);
    dump("anim", &frames, &[0, 1, 10, 50]);
    for k in 0..60usize {
        let f = picture(&frames, k);
        let css = (20 * k as u32).min(1000);
        assert_eq!(run_of(f, 10, [255, 0, 0]), css, "CSS animation at frame {k}");
        assert_eq!(run_of(f, 30, [0, 255, 0]), 10 * k as u32, "position_ms at frame {k}");
        assert_eq!(run_of(f, 50, [0, 0, 255]), 10 * k as u32, "performance.now() at frame {k}");
        assert_eq!(run_of(f, 70, [255, 255, 0]), 10 * k as u32, "Date.now() at frame {k}");
    }
    assert_eq!(stats.captured, 60, "every frame changed");
    h.renderer.shutdown().await;
}

/// Shows the title with textContent and paints diagnostics as 20x20 squares at y = 0:
/// square 0 green when the title text equals the metadata and no element was created from
/// it; the page background turns red if any injected markup ran.
const TEXT_PAGE: &str = r#"<!DOCTYPE html><html><body style="margin:0;background:rgb(0,0,80)">
<div id="ok" style="width:20px;height:20px;background:rgb(128,128,128)"></div>
<div id="t" style="color:#fff;font:30px sans-serif"></div>
<script>
addEventListener('headend:item', (e) => {
  const t = document.getElementById('t');
  t.textContent = e.detail.title;
  const literal = t.textContent === window.headend.item.title && t.children.length === 0
    && document.querySelectorAll('img,script[data-evil]').length === 0;
  document.getElementById('ok').style.background = literal ? 'rgb(0,255,0)' : 'rgb(255,0,255)';
});
</script></body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_metadata_stays_text() {
    let h = Harness::start().await;
    let title = r#"<img src=x onerror="document.body.style.background='red'"><script data-evil>document.body.style.background='red'</script>"#;
    let mut data = item(title);
    data.artist = r#"</script><script>document.body.style.background='red'</script>"#.into();
    data.album = "\u{2028}\"'`${document.body.style.background='red'}".into();
    let (res, frames) = h.render(job(h.template("text.html", TEXT_PAGE), data.clone(), 640, 200, 25, 10)).await;
    res.unwrap();
    assert_delivery(&frames, 10);
    let f = picture(&frames, 9);
    assert!(close(f.pixel(10, 10), [0, 255, 0]), "title shown literally, no element made from it: {:?}", f.pixel(10, 10));
    assert!(close(f.pixel(600, 150), [0, 0, 80]), "no injected script ran: {:?}", f.pixel(600, 150));

    // The built-in template with the same data: its elements stay, the title shows as text.
    let (res, frames) = h.render(job(Template::Default, data, 1280, 720, 25, 3)).await;
    res.unwrap();
    let f = picture(&frames, 2);
    let reddish = f.data.chunks_exact(4).filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60).count();
    assert!(reddish < 100, "no red page from injected markup ({reddish} red pixels)");
    h.renderer.shutdown().await;
}

/// Jobs sent at once take turns on the browser (frame times are browser-wide in Chromium);
/// each later job starts after the earlier ones ran ahead of real time, and all stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_take_turns_and_stay_exact() {
    let h = Harness::start().await;
    let anim = h.template("anim.html", ANIMATION_PAGE);
    let jobs = (0..3).map(|_| job(anim.clone(), item("Same"), 1280, 120, 25, 30));
    let results = futures::future::join_all(jobs.map(|j| h.render(j))).await;
    for (res, frames) in results {
        res.unwrap();
        assert_delivery(&frames, 30);
        for k in 0..30usize {
            let f = picture(&frames, k);
            assert_eq!(run_of(f, 10, [255, 0, 0]), 20 * k as u32, "CSS animation at frame {k}");
            assert_eq!(run_of(f, 30, [0, 255, 0]), 10 * k as u32, "position_ms at frame {k}");
        }
    }
    h.renderer.shutdown().await;
}

const STATIC_PAGE: &str = r#"<!DOCTYPE html><html><body style="margin:0;background:#246">
<h1 style="color:#fff;font:48px sans-serif">Nothing moves here</h1></body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_page_is_one_picture_then_repeats() {
    let h = Harness::start().await;
    let (res, frames) = h.render(job(h.template("static.html", STATIC_PAGE), item("Static"), 1280, 720, 25, 100)).await;
    let stats = res.unwrap();
    assert_delivery(&frames, 100);
    assert!(frames[1..].iter().all(|f| matches!(f, PageFrame::Repeat)), "only Repeat after frame 0");
    assert_eq!((stats.captured, stats.repeated, stats.attempts), (1, 99, 1));
    h.renderer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_page_has_alpha() {
    let h = Harness::start().await;
    let page = r#"<!DOCTYPE html><html><body style="margin:0;background:transparent">
<div style="width:100px;height:100px;background:rgb(255,0,0)"></div></body></html>"#;
    let mut j = job(h.template("overlay.html", page), item("Overlay"), 320, 240, 25, 2);
    j.transparent = true;
    let (res, frames) = h.render(j).await;
    res.unwrap();
    let f = picture(&frames, 0);
    assert_eq!(f.pixel(50, 50), [255, 0, 0, 255]);
    assert_eq!(f.pixel(200, 200)[3], 0, "nothing drawn: transparent");
    h.renderer.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Faults: crashes, hangs, bad input

/// Changes every frame, so a render takes a while.
const BUSY_PAGE: &str = r#"<!DOCTYPE html><html><body style="margin:0;background:#000">
<div style="height:100px;background:#0f0;animation:grow 4s linear infinite"></div>
<style>@keyframes grow { from { width: 0px } to { width: 640px } }</style></body></html>"#;

fn kill9(pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_browser_is_restarted_and_jobs_go_on() {
    let h = Harness::start().await;
    let busy = h.template("busy.html", BUSY_PAGE);
    let (res, _) = h.render(job(busy.clone(), item("Before"), 640, 360, 25, 5)).await;
    res.unwrap();

    // Between jobs.
    let first = h.renderer.browser_pid().unwrap();
    kill9(first);
    let (res, frames) = h.render(job(busy.clone(), item("After"), 640, 360, 25, 5)).await;
    res.unwrap();
    assert_delivery(&frames, 5);
    let second = h.renderer.browser_pid().unwrap();
    assert_ne!(first, second, "a new browser process renders");
    assert!(h.renderer.status().restarts >= 1);

    // During a job: kill the browser once some frames are out; the job is retried once and
    // still delivers exactly its frames, identical to an undisturbed render.
    let (tx, mut rx) = mpsc::channel(4);
    let renderer = h.renderer.clone();
    let j = job(busy.clone(), item("During"), 640, 360, 25, 100);
    let run = tokio::spawn(async move { renderer.render(j, tx, CancellationToken::new()).await });
    let mut frames = Vec::new();
    while let Some(f) = rx.recv().await {
        frames.push(f);
        if frames.len() == 30 {
            kill9(h.renderer.browser_pid().unwrap());
        }
    }
    let stats = run.await.unwrap().expect("retried on a restarted browser");
    assert_eq!(stats.attempts, 2);
    assert_delivery(&frames, 100);
    let (res, reference) = h.render(job(busy, item("During"), 640, 360, 25, 100)).await;
    res.unwrap();
    for k in [29usize, 30, 31, 60, 99] {
        assert_eq!(picture(&frames, k), picture(&reference, k), "frame {k} after the retry is the undisturbed one");
    }
    h.renderer.shutdown().await;
}

/// Run by `browser_dies_with_its_node` as a separate process: starts a renderer, prints the
/// browser's pid and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of browser_dies_with_its_node"]
async fn node_process_with_a_renderer() {
    let Ok(dir) = std::env::var("HEADEND_RENDER_NODE_DIR") else { return };
    let renderer = Renderer::start(BrowserSettings::new(dir)).await.unwrap();
    println!("BROWSER_PID={}", renderer.browser_pid().unwrap());
    std::future::pending::<()>().await;
}

#[test]
fn browser_dies_with_its_node() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut node = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "node_process_with_a_renderer", "--ignored", "--nocapture", "--test-threads=1"])
        .env("HEADEND_RENDER_NODE_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(node.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let pid = out.lines().map_while(Result::ok).find_map(|l| l.split("BROWSER_PID=").nth(1).map(|p| p.trim().parse::<u32>().unwrap()));
        let _ = tx.send(pid);
    });
    let pid = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(pid)) => pid,
        other => {
            let _ = node.kill();
            panic!("the node did not print its browser pid: {other:?}");
        }
    };
    assert!(alive(pid));
    node.kill().unwrap(); // SIGKILL: no destructor runs in the node.
    node.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "browser {pid} outlived its node");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_page_fails_within_the_heartbeat_and_the_next_job_runs() {
    let frame_timeout = Duration::from_secs(2);
    let h = Harness::with_timeouts(Duration::from_secs(5), frame_timeout).await;
    let hang = h.template(
        "hang.html",
        r#"<!DOCTYPE html><html><body>
<script>addEventListener('load', () => setTimeout(() => { while (true) {} }, 100));</script></body></html>"#,
    );
    // A healthy job runs alongside and is not disturbed (it waits while the hung page holds
    // the browser's frame turn, then goes on).
    let healthy = h.template("anim.html", ANIMATION_PAGE);
    let hung_run = async {
        let started = Instant::now();
        let (res, frames) = h.render(job(hang, item("Hang"), 640, 360, 25, 50)).await;
        (res, frames, started.elapsed())
    };
    let ((res, frames, took), (ok, ok_frames)) = tokio::join!(hung_run, h.render(job(healthy, item("Healthy"), 1280, 120, 25, 30)));
    ok.expect("the healthy job renders beside the hung one");
    assert_delivery(&ok_frames, 30);
    for k in 0..30usize {
        assert_eq!(run_of(picture(&ok_frames, k), 10, [255, 0, 0]), 20 * k as u32, "healthy job, frame {k}");
    }
    let err = res.unwrap_err();
    assert_eq!(err.kind(), "hung", "{err}");
    assert!(err.to_string().contains("hang.html"), "{err}");
    // Two attempts, each bounded by the heartbeat (plus set-up and clean-up).
    assert!(took < 2 * frame_timeout + Duration::from_secs(8), "failed after {took:?}");
    assert!(frames.len() < 50);

    let (res, frames) = h.render(job(h.template("ok.html", STATIC_PAGE), item("Next"), 640, 360, 25, 5)).await;
    res.expect("the browser still renders");
    assert_delivery(&frames, 5);
    h.renderer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_templates_fail_with_reasons_and_the_browser_stays_usable() {
    let h = Harness::with_timeouts(Duration::from_secs(3), Duration::from_secs(3)).await;
    let server = TestServer::start(STATIC_PAGE).await;
    let data = item("Bad");

    let url = format!("http://127.0.0.1:{}/404", server.port);
    let (res, frames) = h.render(job(Template::Url(url.clone()), data.clone(), 320, 240, 25, 3)).await;
    match res.unwrap_err() {
        RenderError::TemplateHttpStatus { url: u, status } => assert_eq!((u, status), (url, 404)),
        other => panic!("expected HTTP 404, got {other}"),
    }
    assert!(frames.is_empty());

    let thrower = h.template("throws.html", "<html><body><script>throw new Error('template broke')</script></body></html>");
    let err = h.render(job(thrower, data.clone(), 320, 240, 25, 3)).await.0.unwrap_err();
    assert_eq!(err.kind(), "page_threw", "{err}");
    assert!(err.to_string().contains("template broke") && err.to_string().contains("throws.html"), "{err}");

    let missing = Template::File(h.dir.path().join("nope.html"));
    let err = h.render(job(missing, data.clone(), 320, 240, 25, 3)).await.0.unwrap_err();
    assert_eq!(err.kind(), "template_missing", "{err}");
    assert!(err.to_string().contains("nope.html"), "{err}");

    let endless = h.template("endless.html", "<html><body><script>while (true) {}</script></body></html>");
    let err = h.render(job(endless, data.clone(), 320, 240, 25, 3)).await.0.unwrap_err();
    assert_eq!(err.kind(), "load_timeout", "{err}");

    let unreachable = Template::Url("http://127.0.0.1:9/page".into());
    let err = h.render(job(unreachable, data.clone(), 320, 240, 25, 3)).await.0.unwrap_err();
    assert_eq!(err.kind(), "template_unreachable", "{err}");

    // Served templates load from their origin.
    let page = Template::Url(format!("http://127.0.0.1:{}/page", server.port));
    let (res, frames) = h.render(job(page, data.clone(), 320, 240, 25, 3)).await;
    res.unwrap();
    assert_delivery(&frames, 3);

    // And the browser is still fine.
    let (res, _) = h.render(job(h.template("ok.html", STATIC_PAGE), data, 320, 240, 25, 3)).await;
    res.unwrap();
    h.renderer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_artwork_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("huge.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(MAX_IMAGE_BYTES as usize, 0);
    std::fs::write(&big, &bytes).unwrap();
    let err = PageData::artwork_from_file(&big).unwrap_err();
    assert_eq!(err.kind(), "image_too_large", "{err}");
    assert!(err.to_string().contains("huge.png") && err.to_string().contains("limit"), "{err}");

    let small = dir.path().join("small.png");
    std::fs::write(&small, &bytes[..1000]).unwrap();
    assert!(PageData::artwork_from_file(&small).unwrap().starts_with("data:image/png;base64,"));

    // A job carrying a giant data URL is refused before any page opens.
    let h = Harness::start().await;
    let mut data = item("Big");
    data.artwork = Some(format!("data:image/png;base64,{}", "A".repeat(MAX_IMAGE_BYTES as usize + 1)));
    let (res, frames) = h.render(job(Template::Default, data, 320, 240, 25, 3)).await;
    assert_eq!(res.unwrap_err().kind(), "image_too_large");
    assert!(frames.is_empty());
    h.renderer.shutdown().await;
}

/// Tries fetch, an image, a stylesheet, a beacon and a WebSocket to the test server, waits
/// for them to settle (headend.waitFor), then paints green if every one was blocked, blue if
/// the fetch got through.
fn network_page(port: u16) -> String {
    format!(
        r#"<!DOCTYPE html><html><head><link rel="stylesheet" href="http://127.0.0.1:{port}/css"></head>
<body style="margin:0;background:rgb(128,128,128)"><img src="http://127.0.0.1:{port}/img">
<script>
const base = 'http://127.0.0.1:{port}';
const got = fetch(base + '/fetch').then(r => r.text()).then(t => t === 'ok', () => false);
const ws = new Promise(res => {{ const s = new WebSocket('ws://127.0.0.1:{port}/ws'); s.onerror = res; s.onclose = res; s.onopen = res; }});
navigator.sendBeacon(base + '/beacon', 'x');
headend.waitFor(ws);
headend.waitFor(got.then(ok => {{ document.body.style.background = ok ? 'rgb(0,0,255)' : 'rgb(0,255,0)'; }}));
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_templates_get_no_network_unless_allowed() {
    let h = Harness::start().await;
    let server = TestServer::start("").await;
    let template = h.template("net.html", &network_page(server.port));

    let (res, frames) = h.render(job(template.clone(), item("Offline"), 320, 240, 25, 3)).await;
    res.unwrap();
    assert!(close(picture(&frames, 0).pixel(300, 200), [0, 255, 0]), "the page saw its fetch fail");
    assert_eq!(server.requests(), Vec::<String>::new(), "the server saw nothing");

    let mut allowed = job(template, item("Online"), 320, 240, 25, 3);
    allowed.allow_network = true;
    let (res, frames) = h.render(allowed).await;
    res.unwrap();
    assert!(close(picture(&frames, 0).pixel(300, 200), [0, 0, 255]), "the page's fetch got through");
    let seen = server.requests();
    for path in ["/fetch", "/img", "/css", "/ws"] {
        assert!(seen.iter().any(|p| p == path), "{path} reached the server: {seen:?}");
    }
    h.renderer.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// The built-in template

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_template_renders_offline_at_every_size() {
    let h = Harness::start().await;
    let mut data = item("A Rather Long Song Title That Needs Two Lines");
    let art = tiny_png(64, 64);
    data.artwork = Some(PageData::image_data_url(&art, "test artwork").unwrap());
    for (w, hgt) in [(1280u32, 720u32), (720, 576), (1920, 1080)] {
        let (res, frames) = h.render(job(Template::Default, data.clone(), w, hgt, 25, 50)).await;
        let stats = res.unwrap();
        assert_delivery(&frames, 50);
        dump(&format!("default-{w}x{hgt}"), &frames, &[0, 49]);
        let f = picture(&frames, 0);
        assert_eq!((f.width, f.height), (w, hgt));
        // Title glyphs are near-white, the background is dark: there must be plenty of both.
        let bright = f.data.chunks_exact(4).filter(|p| p[0] > 220 && p[1] > 220 && p[2] > 220).count();
        let dark = f.data.chunks_exact(4).filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80).count();
        let px = (w * hgt) as usize;
        assert!(bright > px / 200, "{w}x{hgt}: text drawn ({bright} bright pixels)");
        assert!(dark > px / 10, "{w}x{hgt}: dark background ({dark} dark pixels)");
        // Progress and time change once a second: 2 s at 25 fps is 2-4 pictures.
        assert!(stats.captured <= 4, "{w}x{hgt}: {} pictures in 2 s", stats.captured);
        assert!(stats.captured >= 2, "{w}x{hgt}: the elapsed time moved");
    }
    h.renderer.shutdown().await;
}

/// A small valid RGB PNG (stored, uncompressed deflate blocks), for artwork.
fn tiny_png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&[(x * 4) as u8, (y * 4) as u8, 200]);
        }
    }
    // zlib stream of stored blocks.
    let mut z = vec![0x78, 0x01];
    for (i, block) in raw.chunks(65535).enumerate() {
        let last = (i + 1) * 65535 >= raw.len();
        z.push(u8::from(last));
        z.extend_from_slice(&(block.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

// ---------------------------------------------------------------------------------------
// Video in a page

/// A looping 1 s, 25 fps video whose frame n is one colour with red = 10 n: frame k of the
/// render must show video frame k mod 25.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_in_a_page_follows_the_frames() {
    let h = Harness::start().await;
    let video = h.dir.path().join("ramp.webm");
    let out = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("color=c=black:s=64x64:r=25:d=1,format=rgb24,geq=r='N*10':g='128':b='0'")
        .args(["-c:v", "libvpx-vp9", "-lossless", "1", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    let page = r#"<!DOCTYPE html><html><body style="margin:0;background:#000">
<video src="ramp.webm" autoplay muted loop style="width:64px;height:64px;display:block"></video></body></html>"#;
    let (res, frames) = h.render(job(h.template("video.html", page), item("Video"), 320, 240, 25, 40)).await;
    let stats = res.unwrap();
    assert_delivery(&frames, 40);
    for k in 0..40usize {
        let px = picture(&frames, k).pixel(32, 32);
        let want = (k % 25) as u8 * 10;
        assert!(px[0].abs_diff(want) <= 4 && px[1].abs_diff(128) <= 6, "frame {k}: video shows {px:?}, expected red {want}");
    }
    assert_eq!(stats.captured, 40);
    h.renderer.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Cancellation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_receiver_cancels_the_job() {
    let h = Harness::start().await;
    let (tx, mut rx) = mpsc::channel(2);
    let renderer = h.renderer.clone();
    let busy = h.template("busy.html", BUSY_PAGE);
    let run = tokio::spawn(async move { renderer.render(job(busy, item("Drop"), 320, 240, 25, 10_000), tx, CancellationToken::new()).await });
    let received = AtomicUsize::new(0);
    while let Some(_f) = rx.recv().await {
        if received.fetch_add(1, Ordering::Relaxed) == 10 {
            break;
        }
    }
    drop(rx);
    let err = run.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), "cancelled", "{err}");
    h.renderer.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Measurements (cargo test --release -p headend-actors --test render -- --ignored --nocapture)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints frames per second"]
async fn measure_frames_per_second() {
    let h = Harness::start().await;
    let cases: [(&str, Template, u64); 3] = [
        ("default template (changes once a second)", Template::Default, 750),
        ("static page", h.template("static.html", STATIC_PAGE), 750),
        ("page animating every frame", h.template("busy.html", BUSY_PAGE), 250),
    ];
    for (name, template, frames) in cases {
        let (res, out) = h.render(job(template, item("Measure"), 1280, 720, 25, frames)).await;
        let stats = res.unwrap();
        assert_eq!(out.len() as u64, frames);
        let fps = frames as f64 / stats.elapsed.as_secs_f64();
        println!(
            "1280x720@25 {name}: {frames} frames ({} pictures) in {:.2} s = {fps:.1} frames/s = {:.1}x realtime",
            stats.captured,
            stats.elapsed.as_secs_f64(),
            fps / 25.0
        );
    }
    h.renderer.shutdown().await;
}
