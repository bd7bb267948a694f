//! Generates the Rust code of `proto/admin.proto` and `proto/cluster.proto` (tonic +
//! prost), and one encoded file descriptor set for gRPC server reflection.

fn main() -> std::io::Result<()> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    tonic_prost_build::configure()
        // `headend ctl --json` prints the replies.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .file_descriptor_set_path(out.join("headend_descriptor.bin"))
        .compile_protos(&["proto/admin.proto", "proto/cluster.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
