pub mod accounts;
pub mod authorize;
pub mod system;
