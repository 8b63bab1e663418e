//! The openidconnect types for a Google-style provider: the standard ones, plus Google's
//! `hd` (hosted domain) claim in the ID token.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdToken, IdTokenClaims, IdTokenFields, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

/// Claims beyond the standard ones that sign-in reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub(crate) struct GoogleClaims {
    /// The Google Workspace domain of the account; absent for consumer accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hd: Option<String>,
}

impl AdditionalClaims for GoogleClaims {}

/// The verified claims of an ID token.
pub(crate) type GoogleIdTokenClaims = IdTokenClaims<GoogleClaims, CoreGenderClaim>;

/// An ID token as received, not yet verified.
pub(crate) type GoogleIdToken = IdToken<
    GoogleClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The token endpoint's answer.
pub(crate) type GoogleTokenResponse = StandardTokenResponse<
    IdTokenFields<
        GoogleClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// The client with its authorization and token endpoints set from discovery.
pub(crate) type ProviderClient = Client<
    GoogleClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    GoogleTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;
