//! `revmod`: the command line over the revmod support crate, the headless notebook runner and the
//! JupyterLab kernelspec installer.
//!
//! Each subcommand is a thin shell over the same library function a notebook cell calls; its code lives
//! in `cmd_<area>.rs` (one file per area) so this file stays a table of contents.

use clap::{Parser, Subcommand};

mod cmd_data;

/// Google Maps review moderation: the TechJam 2025 notebook as software.
#[derive(Parser)]
#[command(name = "revmod", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write generated Google Local-shaped review and meta files (the embedded sample data).
    SampleData(cmd_data::SampleDataArgs),
    /// Load review + meta files like step 3 and print the load report.
    Load(cmd_data::LoadArgs),
    // New subcommands: one variant here + one match arm below, code in cmd_<area>.rs.
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::SampleData(a) => cmd_data::sample_data(a),
        Command::Load(a) => cmd_data::load(a),
    };
    if let Err(e) = result {
        eprintln!("revmod: error: {e:#}");
        std::process::exit(1);
    }
}
