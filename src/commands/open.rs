//! `todo-deploy open [--print] [--port N]`: the app in the browser. The Ingress's URL when it
//! is reachable from here; otherwise a local gateway on 127.0.0.1:N that routes by the
//! Ingress's rules over port-forwards, until Ctrl-C. `--print` prints the URL and opens no
//! browser (`xdg-open`, or `open` on macOS).

use crate::cli::{GlobalArgs, OpenArgs};
use crate::open::{self, gateway};
use crate::outcome::{Exit, Failure};
use crate::ui::{Event, Events, Printer, Ui};

pub async fn run(global: &GlobalArgs, args: &OpenArgs, printer: &Printer) -> Result<Exit, Failure> {
    Ui::around(printer, async |events| {
        let (plan, cluster) = super::plan_and_cluster(global, events).await?;
        let live = open::live_ingress(&cluster, &plan).await?;
        if let Some(url) = open::reachable_url(live.as_ref()).await {
            events.send(Event::Info(format!("open: the Ingress answers at {url}")));
            show(&url, args, printer, events);
            return Ok(Exit::Success);
        }
        let routes = open::routes(&plan, live.as_ref())?;
        let listener = gateway::bind(args.port).await?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
        let url = format!("http://127.0.0.1:{port}/");
        let why = match &live {
            Some(_) => "the Ingress is not reachable from here (no controller address, or its host does not resolve to it)",
            None => "the release has no Ingress",
        };
        events.send(Event::Info(format!(
            "open: {why}; a gateway on {url} routes {} through the API server until Ctrl-C",
            routes.0.iter().map(|r| format!("`{}` → `{}`", r.path, r.service)).collect::<Vec<_>>().join(", ")
        )));
        show(&url, args, printer, events);
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        gateway::serve(listener, cluster.client.clone(), &plan.namespace, routes, events, stop).await;
        Ok(Exit::Success)
    })
    .await
}

/// Prints the URL (stdout, for scripts) and, without `--print`, opens it in the browser.
fn show(url: &str, args: &OpenArgs, printer: &Printer, events: &Events) {
    printer.data(&format!("{url}\n"));
    if args.print {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let launched = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(error) = launched {
        events.send(Event::Warning(format!(
            "cannot start `{opener}` ({error}): open {url} yourself"
        )));
    }
}
