//! Puts the memory map of the QEMU board that runs each target where cortex-m-rt's `link.x`
//! looks for `memory.x`.
use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let memory = match target.as_str() {
        // lm3s6965evb (Cortex-M3): 256 KiB flash, 64 KiB RAM.
        "thumbv7m-none-eabi" => {
            "FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 64K"
        }
        // microbit (nRF51822, Cortex-M0): 256 KiB flash, 16 KiB RAM.
        "thumbv6m-none-eabi" => {
            "FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 16K"
        }
        // mps2-an386 (Cortex-M4): 4 MiB of code SRAM at 0, 4 MiB of data SRAM.
        "thumbv7em-none-eabihf" => {
            "FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n  RAM : ORIGIN = 0x20000000, LENGTH = 4M"
        }
        _ => {
            "FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 16K"
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    fs::write(
        out.join("memory.x"),
        format!("MEMORY\n{{\n  {memory}\n}}\n"),
    )
    .unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
