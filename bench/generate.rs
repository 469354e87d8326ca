//! The generated project both front-end benchmarks read: thousands of containers, networks,
//! links and tests, about 250 bytes a container, valid as a whole.

/// A project of `containers` services spread over /24 networks, with links and tests, about
/// 250 bytes a container.
pub(crate) fn generate(containers: usize) -> String {
    let mut out = String::from("project \"big\"\nimport \"std:toolbox\"\n");
    out.push_str("image \"base\" {\n    from \"toolbox\"\n    run \"sh\" \"-c\" \"echo ready > /ready\"\n    env MODE=\"bench\"\n    cmd \"sleep\" \"infinity\"\n}\n");
    let networks = containers.div_ceil(200);
    for n in 0..networks {
        out.push_str(&format!(
            "network \"net{n}\" subnet=\"10.{}.{}.0/24\"\n",
            n / 256,
            n % 256
        ));
    }
    for c in 0..containers {
        let n = c / 200;
        let ip = c % 200 + 10;
        out.push_str(&format!(
            "container \"svc{c}\" image=\"base\" {{\n    network \"net{n}\" ip=\"10.{}.{}.{ip}\"\n    env INDEX=\"{c}\"\n    memory \"64MiB\"\n    cpus 0.25\n    restart \"on-failure\" max=3\n",
            n / 256,
            n % 256
        ));
        if c > 0 {
            out.push_str(&format!(
                "    depends-on \"svc{}\" condition=\"started\"\n",
                c - 1
            ));
        }
        if c % 10 == 0 {
            out.push_str(&format!("    publish 8080 host={}\n", 20000 + c));
        }
        out.push_str("}\n");
    }
    for l in 0..containers / 10 {
        out.push_str(&format!(
            "link \"svc{}:eth1\" \"svc{}:eth1\" subnet=\"172.{}.{}.{}/30\" {{ impair delay=\"2ms\" loss=\"0.1%\"; }}\n",
            2 * l,
            2 * l + 1,
            16 + l / 16384,
            (l / 64) % 256,
            (l % 64) * 4
        ));
    }
    for t in 0..containers / 20 {
        out.push_str(&format!(
            "test \"t{t}\" {{\n    tcp from=\"svc{t}\" \"svc{}:8080\" expect=\"open\"\n}}\n",
            t + 1
        ));
    }
    out
}
