//! `HEADEND_*` environment overrides.
//!
//! * `HEADEND_NODE_ID`, `HEADEND_DATA_DIR`, `HEADEND_HTTP_LISTEN`,
//!   `HEADEND_LOG_FORMAT` override `[node]`.
//! * `HEADEND_RAFT_LISTEN`, `HEADEND_ADMIN_LISTEN`, `HEADEND_ADVERTISE_RAFT`,
//!   `HEADEND_ADVERTISE_ADMIN`, `HEADEND_SEEDS` (comma-separated) and
//!   `HEADEND_INTERFACES` (comma-separated) override `[node.cluster]` when the file has
//!   it (one config file for every node of a cluster, the differences in the
//!   environment, as containers are run).
//! * `HEADEND_CHANNEL_<ID>_{MUX_RATE,GROUP,PORT,INTERFACE}` override one
//!   channel; `<ID>` is the channel id upper-cased with `-` turned into `_`.
//!
//! The environment is injected (`Fn(&str) -> Option<String>`). A bad value is
//! reported as [`ConfigIssue::InvalidEnvOverride`] naming the variable, and the
//! file's value is kept (so the same problem is not reported twice).

use std::fmt::Display;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use super::{validate, Config, ConfigIssue, LogFormat};

/// Applies the overrides found in `env` to `config`; returns the bad ones.
pub(super) fn apply_overrides(
    config: &mut Config,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<ConfigIssue> {
    let mut o = Overrides {
        env: &env,
        issues: Vec::new(),
    };
    let node = &mut config.node;
    o.apply(
        "HEADEND_NODE_ID",
        "node.id",
        &mut node.id,
        |v| Ok(v.to_owned()),
        |f, v| validate::node_id(f, v),
    );
    o.apply(
        "HEADEND_DATA_DIR",
        "node.data_dir",
        &mut node.data_dir,
        |v| Ok(PathBuf::from(v)),
        |f, v| validate::non_empty_path(f, v),
    );
    o.apply(
        "HEADEND_HTTP_LISTEN",
        "node.http_listen",
        &mut node.http_listen,
        parsed::<SocketAddr>("a socket address such as 127.0.0.1:8080"),
        no_check,
    );
    o.apply(
        "HEADEND_LOG_FORMAT",
        "node.log_format",
        &mut node.log_format,
        |v| v.parse::<LogFormat>(),
        no_check,
    );
    if let Some(c) = node.cluster.as_mut() {
        let addr = parsed::<SocketAddr>("a socket address such as 10.0.0.1:7000");
        o.apply("HEADEND_RAFT_LISTEN", "node.cluster.raft_listen", &mut c.raft_listen, &addr, no_check);
        o.apply("HEADEND_ADMIN_LISTEN", "node.cluster.admin_listen", &mut c.admin_listen, &addr, no_check);
        let host_port = |v: &str| Ok(Some(v.to_owned()));
        o.apply("HEADEND_ADVERTISE_RAFT", "node.cluster.advertise_raft", &mut c.advertise_raft, host_port, no_check);
        o.apply("HEADEND_ADVERTISE_ADMIN", "node.cluster.advertise_admin", &mut c.advertise_admin, host_port, no_check);
        let list = |v: &str| Ok(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect());
        o.apply("HEADEND_SEEDS", "node.cluster.seeds", &mut c.seeds, list, no_check);
        let interfaces = |v: &str| {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse::<Ipv4Addr>().map_err(|e| format!("{s:?}: {e}; expected addresses such as 10.0.0.1,10.0.1.1"))).collect()
        };
        o.apply("HEADEND_INTERFACES", "node.cluster.interfaces", &mut c.interfaces, interfaces, no_check);
    }

    let keys: Vec<String> = config.channels.iter().map(|c| env_key(&c.id)).collect();
    for (i, channel) in config.channels.iter_mut().enumerate() {
        let key = &keys[i];
        let sharing: Vec<usize> = (0..keys.len()).filter(|j| keys[*j] == *key).collect();
        let label = format!("channels[{:?}]", channel.id);
        let var = |suffix: &str| format!("HEADEND_CHANNEL_{key}_{suffix}");
        if sharing.len() > 1 {
            if sharing[0] == i {
                o.ambiguous(&var, &sharing);
            }
            continue;
        }
        let m = &mut channel.multicast;
        o.apply(
            &var("MUX_RATE"),
            &format!("{label}.mux_rate"),
            &mut channel.mux_rate,
            |v| parsed::<u64>("a bit rate in bit/s such as 4000000")(&v.replace('_', "")),
            |f, v| validate::mux_rate(f, *v),
        );
        o.apply(
            &var("GROUP"),
            &format!("{label}.multicast.group"),
            &mut m.group,
            parsed::<Ipv4Addr>("an IPv4 multicast group such as 239.255.0.1"),
            |f, v| validate::group(f, *v),
        );
        o.apply(
            &var("PORT"),
            &format!("{label}.multicast.port"),
            &mut m.port,
            parsed::<u16>("a UDP port in 1..=65535"),
            |f, v| validate::port(f, *v),
        );
        o.apply(
            &var("INTERFACE"),
            &format!("{label}.multicast.interface"),
            &mut m.interface,
            parsed::<Ipv4Addr>("an IPv4 interface address such as 192.0.2.10"),
            |f, v| validate::unicast(f, *v),
        );
    }
    o.issues
}

/// Channel id as used in variable names: `demo-rock` -> `DEMO_ROCK`.
pub(super) fn env_key(channel_id: &str) -> String {
    channel_id.to_ascii_uppercase().replace('-', "_")
}

struct Overrides<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    issues: Vec<ConfigIssue>,
}

impl Overrides<'_> {
    /// If `var` is set: parse it, check it, and store it in `slot`.
    fn apply<T>(
        &mut self,
        var: &str,
        field: &str,
        slot: &mut T,
        parse: impl Fn(&str) -> Result<T, String>,
        check: impl Fn(&str, &T) -> Option<ConfigIssue>,
    ) {
        let Some(raw) = (self.env)(var) else {
            return;
        };
        let value = raw.trim();
        let result = parse(value)
            .map_err(|reason| format!("overrides {field}: {reason}"))
            .and_then(|v| match check(field, &v) {
                Some(issue) => Err(format!("overrides {issue}")),
                None => Ok(v),
            });
        match result {
            Ok(v) => *slot = v,
            Err(reason) => self.issues.push(ConfigIssue::InvalidEnvOverride {
                var: var.to_owned(),
                value: raw,
                reason,
            }),
        }
    }

    /// Channels whose ids map to the same variable names cannot be overridden.
    fn ambiguous(&mut self, var: &dyn Fn(&str) -> String, channels: &[usize]) {
        for suffix in ["MUX_RATE", "GROUP", "PORT", "INTERFACE"] {
            let name = var(suffix);
            if let Some(value) = (self.env)(&name) {
                let list: Vec<String> = channels.iter().map(|i| format!("channels[{i}]")).collect();
                self.issues.push(ConfigIssue::InvalidEnvOverride {
                    var: name,
                    value,
                    reason: format!(
                        "ambiguous: matches {}; fix: rename a channel so ids differ in more than '-' vs '_'",
                        list.join(" and ")
                    ),
                });
            }
        }
    }
}

fn parsed<T>(expected: &'static str) -> impl Fn(&str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    move |v| {
        v.parse::<T>()
            .map_err(|e| format!("{v:?} is not {expected} ({e})"))
    }
}

fn no_check<T>(_: &str, _: &T) -> Option<ConfigIssue> {
    None
}
