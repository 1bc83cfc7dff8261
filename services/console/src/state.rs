//! What every handler shares: the templates, one channel to control that every
//! signed-in user's calls are multiplexed over (each call with that user's
//! key), and the settings pages need.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::response::{IntoResponse as _, Response};
use axum_extra::extract::cookie::Key;
use foco_control_client::{BearerAuth, ControlApi, DeliveryApi, MessagingApi, SchedulingApi};
use tonic::transport::Channel;

use crate::config::Config;
use crate::error::ConsoleError;
use crate::render::{Frame, Templates};
use crate::session::Session;

#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

pub struct Shared {
    pub config: Config,
    pub templates: Templates,
    pub channel: Channel,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn templates(&self) -> &Templates {
        &self.shared.templates
    }

    pub fn session_key(&self) -> Key {
        self.shared.config.session_key.clone()
    }

    /// The control API as the signed-in user.
    pub fn control(&self, session: &Session) -> Result<ControlApi, ConsoleError> {
        self.control_with_key(&session.api_key)
    }

    pub fn scheduling(&self, session: &Session) -> Result<SchedulingApi, ConsoleError> {
        Ok(foco_control_client::scheduling_api(
            self.shared.channel.clone(),
            BearerAuth::new(&session.api_key)?,
        ))
    }

    pub fn delivery(&self, session: &Session) -> Result<DeliveryApi, ConsoleError> {
        Ok(foco_control_client::delivery_api(
            self.shared.channel.clone(),
            BearerAuth::new(&session.api_key)?,
        ))
    }

    pub fn messaging(&self, session: &Session) -> Result<MessagingApi, ConsoleError> {
        Ok(foco_control_client::messaging_api(
            self.shared.channel.clone(),
            BearerAuth::new(&session.api_key)?,
        ))
    }

    /// A signed-in page: `context` in the frame, as a response.
    pub fn page(
        &self,
        frame: &Frame,
        session: &Session,
        template: &str,
        title: &str,
        section: &str,
        context: minijinja::Value,
    ) -> Result<Response, ConsoleError> {
        Ok(self
            .templates()
            .page(frame, Some(session), template, title, section, context)?
            .into_response())
    }

    /// The control API with a key being tried at sign-in.
    pub fn control_with_key(
        &self,
        api_key: &secrecy::SecretString,
    ) -> Result<ControlApi, ConsoleError> {
        Ok(foco_control_client::control_api(
            self.shared.channel.clone(),
            BearerAuth::new(api_key)?,
        ))
    }
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Self {
        state.session_key()
    }
}
