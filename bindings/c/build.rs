//! Gives `libloadmon.so` its SONAME, `libloadmon.so.<major>`: programs linked against it load
//! the library of the same major version (`make install` adds the symlinks).

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if os == "linux" || os == "freebsd" || os == "netbsd" || os == "openbsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libloadmon.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
