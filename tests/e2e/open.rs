//! `todo-deploy open`: `--print` prints the Ingress's URL when it is reachable; otherwise a
//! local gateway routes by the Ingress's own rules over port-forwards through the API server:
//! a GET of `/api/health` reaches the backend and `/` the frontend (the stand-in serves
//! `pods/portforward` as the API server does; a real cluster forwards to the real pods).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::cluster::{App, Env};
use crate::support::running::Running;

/// A plain HTTP/1.1 GET of `path` from `127.0.0.1:port`: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the gateway listens");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_ingress_the_gateway_routes_api_to_the_backend_and_the_rest_to_the_frontend()
 {
    let env = Env::start("open-gateway").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    // `todo.local` resolves nowhere here: the Ingress is not reachable, so a gateway starts.
    let mut open = Running::start(env.command(&["open", "--print", "--port", "0"]));
    let line = open
        .until_line(|line| line.contains("a gateway on http://127.0.0.1:"))
        .await;
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .expect("the gateway's port");
    assert!(
        line.contains("`/api` → `backend`") && line.contains("`/` → `frontend`"),
        "{line}"
    );

    // busybox `httpd` (a real cluster) answers `/api/health` with a redirect to its directory.
    let (status, body) = get(port, "/api/health").await;
    assert!(
        status == 200 || status == 302,
        "/api/health reaches the backend: {status} {body}"
    );
    if env.standin().is_some() {
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }
    let said = open
        .until_line(|line| line.contains("service `backend`: forwarding to pod `backend-"))
        .await;
    assert!(said.contains("port 8000"), "{said}");
    let first = said
        .split("pod `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("a pod")
        .to_owned();
    let (status, body) = get(port, "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "ok\n"),
        "/ reaches the frontend"
    );
    open.until_line(|line| line.contains("service `frontend`: forwarding to pod `frontend-"))
        .await;
    // The backend does not serve `/`, nor the frontend `/api/health`: each went where its rule says.
    let (status, _) = get(port, "/api/nothing-here").await;
    assert_eq!(
        status, 404,
        "the backend answers what it does not serve with 404"
    );

    // The pod goes away: the next request goes to another ready pod, and the gateway says so.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    pods.delete(&first, &DeleteParams::default())
        .await
        .expect("delete the pod");
    let gone = pods.clone();
    let deleted = first.clone();
    env.eventually(
        "the pod is gone or going",
        std::time::Duration::from_secs(60),
        || {
            let pods = gone.clone();
            let name = deleted.clone();
            async move {
                pods.get_opt(&name)
                    .await
                    .ok()
                    .flatten()
                    .is_none_or(|pod| pod.metadata.deletion_timestamp.is_some())
            }
        },
    )
    .await;
    let (status, _) = get(port, "/api/health").await;
    assert!(
        status == 200 || status == 302,
        "still reaches the backend: {status}"
    );
    let again = open
        .until_line(|line| line.contains("service `backend`: forwarding to pod `backend-"))
        .await;
    assert!(
        !again.contains(&first),
        "another pod than the deleted `{first}`: {again}"
    );

    std::process::Command::new("kill")
        .args(["-INT", &open.pid().to_string()])
        .status()
        .expect("kill");
    let run = open.finish().await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!("http://127.0.0.1:{port}/\n"),
        "--print prints the URL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_reachable_ingress_print_gives_its_url() {
    let env = Env::start("open-ingress").await;
    env.provide(App::Healthy, &[]).await;
    // No host: the Ingress answers on its address, which the controller writes in its status.
    let sets = ["--set", "ingress.host=null"];
    let mut up = vec!["up"];
    up.extend(sets);
    env.run(&up).await.expect_code(0);
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &env.namespace);
    let address = match env.standin() {
        Some(_) => {
            // What an ingress controller does once it serves the Ingress.
            let status =
                serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}});
            ingresses
                .patch_status("todo", &PatchParams::default(), &Patch::Merge(&status))
                .await
                .expect("the Ingress's status");
            "127.0.0.1".to_owned()
        }
        None => {
            let classes: Api<IngressClass> = Api::all(env.client.clone());
            if classes.get_opt("nginx").await.ok().flatten().is_none() {
                eprintln!(
                    "skipped on this real cluster: no IngressClass `nginx` (`minikube addons enable ingress`) writes the Ingress's address"
                );
                return;
            }
            let address_of = |ingress: Option<Ingress>| {
                ingress.and_then(|i| i.status?.load_balancer?.ingress?.first()?.ip.clone())
            };
            env.eventually(
                "the controller writes the Ingress's address",
                std::time::Duration::from_secs(120),
                || {
                    let ingresses = ingresses.clone();
                    async move { address_of(ingresses.get("todo").await.ok()).is_some() }
                },
            )
            .await;
            let address = address_of(ingresses.get("todo").await.ok());
            address.expect("an address")
        }
    };
    let mut open = vec!["open", "--print"];
    open.extend(sets);
    let run = env.run(&open).await;
    run.expect_code(0);
    assert_eq!(run.stdout, format!("http://{address}/\n"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the Ingress answers at"),
        "{}",
        run.stderr
    );
}
