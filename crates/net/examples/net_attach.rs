//! One container's network set-up and tear-down, as `berth run --rm` will do it:
//! `net_attach ROOT RUN_ROOT none|bridge|NETWORK|create=NETWORK|rm=NETWORK`. `none` makes and removes the
//! namespace file only (what --network none costs here); the others also attach to the
//! network and detach. Timed side by side by bench/net-attach.sh (inside a private netns).

use std::path::Path;

use berth_net::{netns, AttachRequest, NetworkAttach, NetworkStore};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(berth_net::dns::ROLE) => std::process::exit(berth_net::dns::serve_main(&args[2..])),
        Some(berth_net::proxy::ROLE) => {
            std::process::exit(berth_net::proxy::proxy_main(&args[2..]))
        }
        _ => {}
    }
    let [_, root, run_root, mode] = args.as_slice() else {
        eprintln!("usage: net_attach ROOT RUN_ROOT none|bridge|NETWORK");
        std::process::exit(2);
    };
    if let Err(e) = once(Path::new(root), Path::new(run_root), mode) {
        eprintln!("net_attach: {e}");
        std::process::exit(1);
    }
}

fn once(root: &Path, run_root: &Path, mode: &str) -> berth_net::Result<()> {
    if let Some(name) = mode.strip_prefix("create=") {
        let store = NetworkStore::open(root, run_root)?;
        store.create(&berth_net::CreateOptions {
            name: name.to_string(),
            ..Default::default()
        })?;
        return Ok(());
    }
    if let Some(name) = mode.strip_prefix("rm=") {
        return NetworkStore::open(root, run_root)?.remove(name);
    }
    let id = format!("bench{:059}", std::process::id());
    let ns = netns::create(run_root, &id)?;
    let res = (|| {
        if mode == "none" {
            return Ok(());
        }
        let store = NetworkStore::open(root, run_root)?;
        store.attach(&AttachRequest {
            container_id: &id,
            container_name: &id[..12],
            hostname: &id[..12],
            netns: &ns,
            networks: vec![NetworkAttach {
                name: mode.to_string(),
                ..Default::default()
            }],
            ports: Vec::new(),
            dns: Vec::new(),
            extra_hosts: Vec::new(),
        })?;
        store.release(&id, &ns)
    })();
    let _ = netns::remove(&ns);
    res
}
