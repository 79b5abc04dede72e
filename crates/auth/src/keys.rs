//! Signing keys as use cases: listing and rotating them (the operator's
//! `sessiond keys`, an admin's `POST /api/admin/keys/rotate`), and keeping
//! this process's key set current. The keys themselves are the `tokens`
//! crate's [`tokens::KeyRing`]; a service whose tokens are signed with a
//! configured secret has none, and then has nothing to rotate.

use std::sync::Arc;

use tokens::{KeyInfo, KeyRing};

use crate::{AuditAction, AuditOutcome, AuthError, AuthService, Principal, RequestMeta};

impl AuthService {
    /// Signs with the keys of `ring` from now on (its codec must be the one
    /// this service was built with). Set once, at start-up.
    pub fn attach_key_ring(&self, ring: Arc<KeyRing>) {
        let _already = self.key_ring.set(ring);
    }

    /// The key ring, when keys come from the database.
    pub fn key_ring(&self) -> Option<&Arc<KeyRing>> {
        self.key_ring.get()
    }

    /// Reads the keys again (another instance rotated, or the periodic
    /// check). On failure the keys in use stay in use.
    pub fn reload_keys(&self) -> anyhow::Result<()> {
        if let Some(ring) = self.key_ring.get() {
            ring.reload(self.now())?;
        }
        Ok(())
    }

    /// Every signing key (no private material).
    pub fn signing_keys(&self) -> Result<Vec<KeyInfo>, AuthError> {
        match self.key_ring.get() {
            Some(ring) => Ok(ring.list()?),
            None => Ok(self.codec().keys().infos().cloned().collect()),
        }
    }

    /// An administrator rotates the signing keys: the next key signs from
    /// now on, a new next key is published, the current key retires and
    /// keeps verifying until its tokens expire. Nobody is logged out.
    pub fn rotate_keys(
        &self,
        admin: &Principal,
        meta: &RequestMeta,
    ) -> Result<Vec<KeyInfo>, AuthError> {
        if !admin.is_admin() {
            return Err(AuthError::Forbidden("Admin role required"));
        }
        self.rotate_keys_now()?;
        self.audit(AuditAction::KeyRotate, AuditOutcome::Success, Some(admin.user.id), None, meta)?;
        self.signing_keys()
    }

    /// Rotates the signing keys (the operator's `sessiond keys rotate`).
    /// A rotation that lost a race to another instance's counts as done.
    pub fn rotate_keys_now(&self) -> Result<(), AuthError> {
        let ring = self.key_ring.get().ok_or(AuthError::Forbidden(
            "Tokens are signed with SESSIOND_JWT_SECRET; there are no keys to rotate",
        ))?;
        ring.rotate(self.now())?;
        Ok(())
    }

    /// The background job: rotates when the current key has signed for
    /// `max_age`, deletes retired keys past their window, and reloads.
    pub fn key_housekeeping(&self, max_age: Option<kernel::Duration>) -> anyhow::Result<bool> {
        let Some(ring) = self.key_ring.get() else { return Ok(false) };
        let now = self.now();
        let rotated = match max_age {
            Some(age) => ring.rotate_if_older(age, now)?,
            None => false,
        };
        ring.purge(now)?;
        Ok(rotated)
    }
}
