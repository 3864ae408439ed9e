//! Authentication for writes and admin routes (`[auth]`), off by default for compatibility.
//!
//! [`layer`] runs on every request when auth is enabled: it verifies the credential, if any,
//! records the result as an [`Authentication`] extension, and refuses protected writes without
//! the write role. Admin routes are wrapped in [`admin_only`], which needs the admin role and
//! refuses everything when auth is disabled, so an admin route is never open by accident;
//! [`admin_when_enabled`] routes (`/health/detailed`) stay open while auth is off, as in the
//! original, and need the admin role once it is on. A client address whose credentials keep
//! failing is throttled (`auth.max_failures`).

mod credentials;
mod layer;

pub use credentials::{Authenticator, Principal};
pub use layer::{AuthLayer, Authentication, admin_only, admin_when_enabled, layer};
