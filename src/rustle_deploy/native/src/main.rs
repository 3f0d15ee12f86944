//! rustle-runner: the host side of rustle-deploy's native format (docs/native.md).
#![allow(dead_code)]

mod agent;
mod b64;
mod events;
mod executor;
mod expr;
mod json;
mod modules;
mod payload;
mod regex;
mod sha;
mod sys;

fn main() {}
