//! Device self-registration (`POST /devices/register/{endpointid}/{deviceid}`).
//!
//! The first registration of a device id creates the device; registering it again refreshes its
//! token only for a caller that proves it is that device (its current valid token, or a key
//! proof derived from the endpoint's enrollment key). Anybody else gets a conflict: knowing a
//! device id is not enough to take it over.

use std::net::IpAddr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mh_store::{DeviceAdmission, Registration};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::device_token::{self, DeviceClaims};
use crate::keys::verify_enrollment_proof;
use crate::{ErrorKind, Gateway, GatewayError, Result};

/// Device ids: 1-128 ASCII letters, digits and `-._:@`.
pub fn validate_device_id(id: &str) -> Result<()> {
    let valid = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:@".contains(&b));
    if !valid {
        return Err(GatewayError::bad_request(
            "invalid_device_id",
            "a device id is 1 to 128 characters of letters, digits and '-', '.', '_', ':', '@'",
        ));
    }
    Ok(())
}

/// What a device presents when registering.
#[derive(Debug, Default)]
pub struct RegistrationRequest<'a> {
    /// The device's current token, when it re-registers to refresh it.
    pub current_token: Option<&'a str>,
    /// `base64(HMAC-SHA256(enrollment key, device id))`.
    pub key_proof: Option<&'a str>,
}

#[derive(Debug)]
pub struct IssuedDeviceToken {
    pub access_token: String,
    pub expires_at: OffsetDateTime,
}

pub(crate) struct RegistrationLimiter {
    per_endpoint: DefaultKeyedRateLimiter<Uuid>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn too_many(wait: Duration, what: &str) -> GatewayError {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    GatewayError::new(
        ErrorKind::TooManyRequests {
            retry_after: Duration::from_secs(seconds),
        },
        "too_many_requests",
        format!("too many device registrations {what}; retry in {seconds} s"),
    )
}

impl RegistrationLimiter {
    pub fn new(per_endpoint: Quota, per_ip: Quota) -> Self {
        RegistrationLimiter {
            per_endpoint: RateLimiter::keyed(per_endpoint),
            per_ip: RateLimiter::keyed(per_ip),
            clock: DefaultClock::default(),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<()> {
        self.per_ip
            .check_key(&ip)
            .map_err(|n| too_many(n.wait_time_from(self.clock.now()), "from this address"))
    }

    fn check_endpoint(&self, endpoint: Uuid) -> Result<()> {
        self.per_endpoint
            .check_key(&endpoint)
            .map_err(|n| too_many(n.wait_time_from(self.clock.now()), "on this endpoint"))
    }

    pub fn forget_idle(&self) {
        self.per_endpoint.retain_recent();
        self.per_ip.retain_recent();
    }
}

fn takeover() -> GatewayError {
    GatewayError::new(
        ErrorKind::Conflict,
        "device_exists",
        "this device id is already registered; to refresh its token send its current token as Authorization: Bearer <device token> (or a valid key proof)",
    )
}

impl Gateway {
    /// Registers `device_id` behind `endpoint_id` (or refreshes its token) and issues a token.
    /// The caller has already passed [`Gateway::check_registration_rate`] for its address.
    pub async fn register_device(
        &self,
        endpoint_id: Uuid,
        device_id: &str,
        request: RegistrationRequest<'_>,
    ) -> Result<IssuedDeviceToken> {
        validate_device_id(device_id)?;
        let entry = self.live_endpoint(endpoint_id).await?;
        self.limiter.check_endpoint(endpoint_id)?;
        let policy = entry.endpoint.registration;
        if policy == Registration::Disabled {
            return Err(GatewayError::forbidden(
                "registration_disabled",
                "device registration is disabled on this endpoint",
            ));
        }
        let proof_valid = match request.key_proof {
            Some(proof) => {
                let valid = verify_enrollment_proof(&entry.enrollment_key, device_id, proof);
                if !valid {
                    return Err(GatewayError::unauthorized(
                        "the device key proof is invalid: send base64(HMAC-SHA256(enrollment key, device id)) in x-mh-device-key",
                    ));
                }
                true
            }
            None => false,
        };
        if policy == Registration::Key && !proof_valid {
            return Err(GatewayError::unauthorized(
                "this endpoint requires a device key proof: send base64(HMAC-SHA256(enrollment key, device id)) in x-mh-device-key",
            ));
        }

        let now = OffsetDateTime::now_utc();
        let device = match self
            .store
            .admit_device(
                endpoint_id,
                device_id,
                self.config.max_devices_per_endpoint,
                now,
            )
            .await?
        {
            DeviceAdmission::Created(device) => device,
            DeviceAdmission::LimitReached => {
                return Err(GatewayError::forbidden(
                    "device_limit_reached",
                    format!(
                        "the endpoint already has the most devices allowed ({}); delete unused devices first",
                        self.config.max_devices_per_endpoint
                    ),
                ))
            }
            DeviceAdmission::Exists(existing) => {
                if existing.disabled {
                    return Err(GatewayError::forbidden(
                        "device_disabled",
                        format!("device {device_id:?} is disabled"),
                    ));
                }
                let proven = proof_valid
                    || match request.current_token {
                        Some(token) => self
                            .verify_device_token(&entry, token, now.unix_timestamp())
                            .await
                            .is_ok_and(|id| id == device_id),
                        None => false,
                    };
                if !proven {
                    return Err(takeover());
                }
                let renewed = self
                    .store
                    .renew_device_token(endpoint_id, device_id, existing.token_generation, now)
                    .await?
                    .ok_or_else(takeover)?;
                self.invalidate_device(endpoint_id, device_id);
                renewed
            }
        };
        let expires_at = now + self.config.device_token_lifetime;
        // Whole seconds, so that expires_at as shown equals the expiry inside the token.
        let expires_at = expires_at.replace_nanosecond(0).unwrap_or(expires_at);
        let access_token = device_token::issue(
            &entry.device_token_key,
            &DeviceClaims {
                endpoint: endpoint_id,
                device: device.device_id.clone(),
                generation: device.token_generation,
                expires_at: expires_at.unix_timestamp(),
            },
        );
        // A negative cache entry from an earlier failed lookup must not hide the new device.
        self.invalidate_device(endpoint_id, device_id);
        Ok(IssuedDeviceToken {
            access_token,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_follow_the_rules() {
        for good in ["a", "sensor-1", "x.y_z:1@hall", &"d".repeat(128)] {
            assert!(validate_device_id(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", &"d".repeat(129), "a%2F"] {
            assert!(validate_device_id(bad).is_err(), "{bad}");
        }
    }
}
