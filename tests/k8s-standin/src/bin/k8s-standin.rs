//! `k8s-standin --kubeconfig-out PATH [--time-scale F] [--version 1.24] [--image REF=serve:PATH,...:PORT|crash:CODE]`:
//! runs the stand-in until killed, printing its URL.

use k8s_standin::{Behavior, Options, StandIn};

fn usage() -> ! {
    eprintln!(
        "usage: k8s-standin --kubeconfig-out PATH [--time-scale F] [--version 1.24] [--context NAME]\n       [--image REF=serve:/path,/other:PORT | REF=crash:CODE]..."
    );
    std::process::exit(2)
}

fn parse_image(spec: &str) -> Option<(String, Behavior)> {
    let (reference, behavior) = spec.split_once('=')?;
    if let Some(rest) = behavior.strip_prefix("serve:") {
        let (paths, port) = rest.rsplit_once(':')?;
        let paths: Vec<&str> = paths.split(',').collect();
        return Some((
            reference.to_string(),
            Behavior::serve(&paths, port.parse().ok()?),
        ));
    }
    if let Some(code) = behavior.strip_prefix("crash:") {
        return Some((
            reference.to_string(),
            Behavior::crash(code.parse().ok()?, &[]),
        ));
    }
    None
}

#[tokio::main]
async fn main() {
    let mut opts = Options::default();
    let mut kubeconfig: Option<String> = None;
    let mut context = "k8s-standin".to_string();
    let mut images = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--kubeconfig-out" => kubeconfig = Some(value()),
            "--time-scale" => opts.time_scale = value().parse().unwrap_or_else(|_| usage()),
            "--version" => opts.version = value(),
            "--context" => context = value(),
            "--image" => images.push(parse_image(&value()).unwrap_or_else(|| usage())),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let Some(kubeconfig) = kubeconfig else {
        usage()
    };
    let standin = match StandIn::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("k8s-standin: cannot start: {e}");
            std::process::exit(1)
        }
    };
    for (r, b) in images {
        standin.node_images().add_image(&r, b);
    }
    if let Err(e) = standin.write_kubeconfig(std::path::Path::new(&kubeconfig), &context) {
        eprintln!("k8s-standin: cannot write {kubeconfig}: {e}");
        std::process::exit(1)
    }
    println!("{}", standin.url());
    let _ = tokio::signal::ctrl_c().await;
}
