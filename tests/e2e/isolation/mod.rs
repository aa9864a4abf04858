//! Plan isolation, tried as an attacker would (README, Trust): what a plan's CLI run can reach
//! from inside its box (`sandbox`), and what a plan owns or names (`ownership`: its workspace,
//! its repository's URL, the worker's own folders), and how large a task may make its session
//! (`session_cap`) and what it can leave in its session for the worker to pack
//! (`session_attacks`).

mod ownership;
mod sandbox;
mod session_attacks;
mod session_cap;
