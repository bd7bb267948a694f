//! The gRPC admin API of real `headend run` processes: every call, writes on a follower
//! forwarded to the leader, bad arguments (codes and field names), authentication
//! failures (no credentials, wrong token, a foreign CA), server reflection listing the
//! services, and `headend ctl`.
//!
//! Multicast group used for the one channel that streams: 239.255.212.1:5301.

use headend_cluster_tests::cluster::{make_certs, stream_request, ClusterBuilder, TestCluster};
use headend_cluster_tests::{headend_command, items, wait_for, Channel};
use headend_proto::admin as pb;
use std::time::Duration;
use tonic::{Code, Request};

const CONVERGE: Duration = Duration::from_secs(15);

fn code_and_message<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("the call must fail");
    (e.code(), e.message().to_owned())
}

#[test]
fn every_call_answers_and_writes_on_a_follower_are_forwarded() {
    let it = items();
    let mut local = Channel::new("local", 1, 5301, &[it.alpha.clone(), it.bravo.clone()]);
    local.group = "239.255.212.1".parse().unwrap();
    let c = ClusterBuilder::new(2).token("t0ken").local_channel(0, local).start();
    let leader = c.wait_leader(&[0, 1], CONVERGE);
    let follower = 1 - leader;
    let (mut l, mut f) = (c.admin(leader), c.admin(follower));

    // ClusterStatus: both members, one leader, the same term everywhere.
    // Both leases are renewed by heartbeats.
    wait_for(CONVERGE, "both nodes alive", || c.status(leader).ok().filter(|s| s.members.iter().all(|m| m.alive)).map(|_| ()));
    let (sl, sf) = (c.status(leader).unwrap(), c.status(follower).unwrap());
    assert_eq!((sl.leader.as_str(), sl.state.as_str(), sf.state.as_str()), (c.nodes[leader].name.as_str(), "leader", "follower"));
    assert_eq!(sl.term, sf.term);
    assert_eq!(sl.members.len(), 2);
    assert!(sl.members.iter().all(|m| m.capacity == 10 && m.lag <= sl.last_log_index), "{sl:?}");

    // RequestStream on the follower: forwarded, created, placed on both nodes.
    let d = c.block_on(f.request_stream(stream_request("News 24", "239.255.212.2", 5302))).expect("request stream").into_inner();
    assert_eq!((d.channel_id.as_str(), d.url.as_str(), d.created), ("news-24", "udp://@239.255.212.2:5302", true));
    assert!(!d.main_node.is_empty() && !d.backup_node.is_empty() && d.main_node != d.backup_node, "{d:?}");
    let again = c.block_on(l.request_stream(stream_request("News 24", "239.255.212.2", 5302))).unwrap().into_inner();
    assert!(!again.created, "the same request updates the channel");

    // Get / List / Update.
    let ch = c.block_on(f.get_channel(pb::ChannelRef { id: "news-24".into() })).unwrap().into_inner();
    assert!(ch.revision > 0);
    assert_eq!(ch.format.as_ref().map(|f| f.video_bitrate), Some(2_000_000));
    assert_eq!(ch.roles.as_ref().map(|r| r.main.clone()), Some(d.main_node.clone()));
    let mut renamed = ch.clone();
    renamed.name = "News Twenty-Four".into();
    renamed.service_name = String::new();
    let updated = c.block_on(f.update_channel(renamed)).expect("update on a follower").into_inner();
    assert_eq!(updated.name, "News Twenty-Four");
    assert!(updated.revision > ch.revision);
    let list = c.block_on(l.list_channels(pb::ListChannelsRequest {})).unwrap().into_inner();
    assert_eq!(list.channels.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec!["news-24"]);

    // Now playing, play order and schedule of the channel node 0 plays from its config.
    let mut n0 = c.admin(0);
    let now = wait_for(Duration::from_secs(30), "the local channel on air", || {
        c.block_on(n0.now_playing(pb::ChannelRef { id: "local".into() })).ok().map(|r| r.into_inner())
    });
    assert!(["Alpha", "Bravo"].contains(&now.title.as_str()), "{now:?}");
    assert_eq!(now.node, "n1");
    let playlist = c.block_on(n0.playlist(pb::ChannelRef { id: "local".into() })).unwrap().into_inner();
    assert!(!playlist.entries.is_empty());
    assert!(playlist.entries.iter().all(|e| e.path.ends_with("alpha.ts") || e.path.ends_with("bravo.ts")), "{playlist:?}");
    let schedule = wait_for(CONVERGE, "the local schedule stored", || {
        c.block_on(n0.schedule(pb::ChannelRef { id: "local".into() })).ok().map(|r| r.into_inner()).filter(|s| !s.entries.is_empty())
    });
    assert_eq!(schedule.mux_rate, 1_500_000);
    assert!(schedule.entries.windows(2).all(|w| w[1].start_packet > w[0].start_packet));
    // On the node that is not its main (its backup computes the stream but does not
    // send it), a replicated channel answers FailedPrecondition naming the main.
    let not_main = c.nodes.iter().position(|n| n.name != d.main_node).unwrap();
    let (code, msg) = code_and_message(c.block_on(c.admin(not_main).now_playing(pb::ChannelRef { id: "news-24".into() })));
    assert_eq!(code, Code::FailedPrecondition, "{msg}");
    assert!(msg.contains("not played on this node") && msg.contains(&d.main_node), "{msg}");

    // Encode jobs: the current table first.
    let mut stream = c.block_on(f.watch_encode_jobs(pb::WatchEncodeJobsRequest { channel: String::new() })).unwrap().into_inner();
    let first = c.block_on(async { tokio::time::timeout(Duration::from_secs(5), stream.message()).await }).expect("a first table").unwrap();
    assert!(first.is_some_and(|t| t.jobs.is_empty()));

    // Delete, on the follower.
    c.block_on(f.delete_channel(pb::ChannelRef { id: "news-24".into() })).expect("delete");
    let (code, _) = code_and_message(c.block_on(f.delete_channel(pb::ChannelRef { id: "news-24".into() })));
    assert_eq!(code, Code::NotFound);
    c.wait_channels(&[], CONVERGE);
}

#[test]
fn bad_arguments_are_invalid_argument_naming_the_field() {
    let c = ClusterBuilder::new(1).start();
    let mut a = c.admin(0);
    let mut expect = |req: pb::RequestStreamRequest, code: Code, field: &str| {
        let (got, msg) = code_and_message(c.block_on(a.request_stream(req)));
        assert_eq!(got, code, "{field}: {msg}");
        assert!(msg.starts_with(&format!("{field}: ")), "message must start with the field {field}: {msg}");
        assert!(msg.contains("fix"), "message must say how to fix it: {msg}");
    };
    expect(stream_request("x", "10.1.2.3", 5000), Code::InvalidArgument, "destination.group");
    expect(stream_request("x", "not-an-ip", 5000), Code::InvalidArgument, "destination.group");
    expect(stream_request("x", "239.255.212.9", 0), Code::InvalidArgument, "destination.port");
    expect(stream_request("x", "239.255.212.9", 70000), Code::InvalidArgument, "destination.port");
    expect(stream_request("!!", "239.255.212.9", 5000), Code::InvalidArgument, "name");
    let mut r = stream_request("x", "239.255.212.9", 5000);
    r.format.as_mut().unwrap().video_codec = 0;
    expect(r, Code::InvalidArgument, "format.video_codec");
    let mut r = stream_request("x", "239.255.212.9", 5000);
    r.format.as_mut().unwrap().width = 5;
    expect(r, Code::InvalidArgument, "format.width");
    let mut r = stream_request("x", "239.255.212.9", 5000);
    r.protocol = 99;
    expect(r, Code::InvalidArgument, "protocol");
    let mut r = stream_request("x", "239.255.212.9", 5000);
    r.destination = None;
    expect(r, Code::InvalidArgument, "destination");
    let mut r = stream_request("x", "239.255.212.9", 5000);
    r.channel = None;
    expect(r, Code::InvalidArgument, "channel");
    // A second channel on a taken destination.
    c.block_on(a.request_stream(stream_request("first", "239.255.212.9", 5000))).expect("first channel");
    let (code, msg) = code_and_message(c.block_on(a.request_stream(stream_request("second", "239.255.212.9", 5000))));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("destination: ") && msg.contains("first"), "{msg}");
    // UpdateChannel goes through the same config validation.
    let ch = c.block_on(a.get_channel(pb::ChannelRef { id: "first".into() })).unwrap().into_inner();
    for (edit, field) in [
        (Box::new(|c: &mut pb::Channel| c.mux_rate = 1) as Box<dyn Fn(&mut pb::Channel)>, "channel.mux_rate"),
        (Box::new(|c: &mut pb::Channel| c.multicast = None), "channel.multicast"),
        (Box::new(|c: &mut pb::Channel| c.id = "Bad Id".into()), "channel.id"),
        (Box::new(|c: &mut pb::Channel| c.playlist = None), "channel.playlist.source"),
        (Box::new(|c: &mut pb::Channel| c.program_number = 70_000), "channel.program_number"),
    ] {
        let mut bad = ch.clone();
        edit(&mut bad);
        let (code, msg) = code_and_message(c.block_on(a.update_channel(bad)));
        assert_eq!(code, Code::InvalidArgument, "{field}: {msg}");
        assert!(msg.starts_with(&format!("{field}: ")), "expected {field}: {msg}");
    }
    let (code, msg) = code_and_message(c.block_on(a.get_channel(pb::ChannelRef { id: "nope".into() })));
    assert_eq!(code, Code::NotFound, "{msg}");
    let (code, msg) = code_and_message(c.block_on(a.delete_channel(pb::ChannelRef { id: String::new() })));
    assert_eq!((code, msg.starts_with("id: ")), (Code::InvalidArgument, true), "{msg}");
    let (code, msg) = code_and_message(c.block_on(a.add_learner(pb::AddLearnerRequest {
        name: "n9".into(),
        raft_addr: "nowhere".into(),
        admin_addr: "127.0.0.1:1".into(),
    })));
    assert_eq!((code, msg.starts_with("raft_addr: ")), (Code::InvalidArgument, true), "{msg}");
}

/// Lists services through server reflection with `token`.
fn reflection_services(c: &TestCluster, i: usize, token: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let conn = c.connection(i);
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    c.block_on(async move {
        let mut client = ServerReflectionClient::with_interceptor(conn.channel().unwrap(), move |mut r: Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        });
        let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
        let mut replies = client.server_reflection_info(futures::stream::once(std::future::ready(req))).await.expect("reflection call").into_inner();
        let reply = replies.message().await.expect("reflection reply").expect("one reply");
        match reply.message_response {
            Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
            other => panic!("not a service list: {other:?}"),
        }
    })
}

#[test]
fn auth_rejects_missing_wrong_and_foreign_credentials() {
    let c = ClusterBuilder::new(2).tls().token("right-token").start();
    c.wait_leader(&[0, 1], CONVERGE);
    let certs = c.certs().unwrap().clone();
    let call = |conn: headend_node::ctl::client::Connection| -> Result<pb::ClusterStatusReply, tonic::Status> {
        c.block_on(async move {
            let mut a = conn.admin().map_err(|e| tonic::Status::unknown(e.to_string()))?;
            tokio::time::timeout(Duration::from_secs(5), a.cluster_status(pb::ClusterStatusRequest {}))
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("5 s"))?
                .map(|r| r.into_inner())
        })
    };
    let base = headend_node::ctl::client::Connection { addr: c.nodes[1].admin.to_string(), token: None, ca: Some(certs.ca()), identity: None };
    // The cluster formed over mutual TLS, and the operator's client certificate works.
    let ok = call(headend_node::ctl::client::Connection { identity: Some(certs.identity("admin")), ..base.clone() }).expect("client certificate");
    assert_eq!(ok.members.len(), 2);
    // The token alone works too.
    call(headend_node::ctl::client::Connection { token: Some("right-token".into()), ..base.clone() }).expect("bearer token");
    // Nothing, or a wrong token: Unauthenticated.
    assert_eq!(call(base.clone()).unwrap_err().code(), Code::Unauthenticated);
    let e = call(headend_node::ctl::client::Connection { token: Some("wrong".into()), ..base.clone() }).unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("does not match"), "{e:?}");
    // A certificate from another CA is refused in the handshake (even with the token).
    let foreign = make_certs(&c.certs().unwrap().dir.join("foreign"), &[], &["admin"]);
    let e = call(headend_node::ctl::client::Connection {
        identity: Some(foreign.identity("admin")),
        token: Some("right-token".into()),
        ..base.clone()
    })
    .unwrap_err();
    assert!(matches!(e.code(), Code::Unavailable | Code::Unknown | Code::Cancelled), "refused at the transport: {e:?}");
    // A client that trusts another CA does not accept the node's certificate.
    let e = call(headend_node::ctl::client::Connection { ca: Some(foreign.ca()), token: Some("right-token".into()), ..base.clone() }).unwrap_err();
    assert!(matches!(e.code(), Code::Unavailable | Code::Unknown | Code::Cancelled), "refused at the transport: {e:?}");
    // Plain text to a TLS port fails.
    let e = call(headend_node::ctl::client::Connection { ca: None, token: Some("right-token".into()), ..base.clone() }).unwrap_err();
    assert_ne!(e.code(), Code::Ok);

    // Reflection, behind the same authentication.
    let services = reflection_services(&c, 1, "right-token");
    assert!(services.contains(&"headend.admin.v1.Admin".to_string()), "{services:?}");
    assert!(services.contains(&"grpc.reflection.v1.ServerReflection".to_string()), "{services:?}");

    // headend ctl, as an operator runs it.
    let ctl = |args: &[&str], token: &str| {
        let mut cmd = headend_command();
        cmd.arg("ctl").arg("--admin").arg(c.nodes[1].admin.to_string()).arg("--ca").arg(certs.ca()).arg("--token").arg(token).args(args);
        cmd.output().expect("run headend ctl")
    };
    let out = ctl(&["request-stream", "--name", "Ctl Channel", "--group", "239.255.212.20", "--port", "5320"], "right-token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("udp://@239.255.212.20:5320"));
    let out = ctl(&["status", "--json"], "right-token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(json["members"].as_array().map(Vec::len), Some(2), "{json}");
    let out = ctl(&["channels", "list"], "right-token");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ID ") && table.contains("ctl-channel"), "{table}");
    let out = ctl(&["channels", "list"], "wrong");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthenticated"), "{}", String::from_utf8_lossy(&out.stderr));
}
