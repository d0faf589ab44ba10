//! Campaign templates rendered in separate, memory-limited processes.
//!
//! Templates are written by editors and API clients and rendered with data
//! from subscribers, so a template is untrusted code. The template engine
//! bounds most of what a template can make it do (fuel per instruction and
//! per byte, capped serialising filters; see `postino_compose::template`),
//! but not every way a value can grow: a container turned into a string is
//! paid for only after it was built. An allocation that fails aborts a Rust
//! process, and the process here is the web server and the sender. So every
//! render runs in a child process, the same binary started with
//! [`SUBCOMMAND`], whose address space is limited: a template that needs
//! more dies alone, and its caller gets a [`TemplateError`] naming the
//! limit, while the server goes on.
//!
//! # Layout
//!
//! - [`Sandbox`] — the parent's pool of child processes: [`Sandbox::compile`]
//!   checks a campaign's templates and returns a [`Template`], whose
//!   [`Template::render`] renders it for one recipient.
//! - [`serve_if_asked`] — the child's side: a binary calls it first thing in
//!   `main`, and it serves requests and exits when started as a sandbox.
//! - `protocol` — one JSON object a line on the child's stdin and stdout.
//!
//! Dependency rule: depends on compose and domain only; never on db, web or
//! sender, which use it.

mod child;
mod pool;
mod protocol;

pub use child::{SUBCOMMAND, serve, serve_if_asked};
pub use pool::{Error, Limits, Sandbox, Template};
pub use postino_compose::TemplateError;
