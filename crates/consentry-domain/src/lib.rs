//! The Consentry domain: organizations, their Microsoft tenants, app profiles, statuses with typed
//! reasons and remediation, history, and the services the console, the JSON API and the CLI all call.
//!
//! **Architecture invariant:** this crate knows nothing of HTTP, SQL or HTTP clients. It talks to the
//! world only through the ports in [`ports`] (storage, clock) and [`platform`] (Microsoft's identity
//! platform). The modules read top-down: identifiers, statuses and the model at the bottom, the
//! errors, the access rule, then the ports with the records they carry, and the services above them
//! ([`service`], [`account`], [`microsoft_sign_in`], [`audit`], [`keys`], [`webhooks`], [`mail`], [`scan`],
//! [`check`], [`reauth`], [`rollouts`], [`campaigns`], [`throttle`], [`vendor_credentials`], [`vendor_watch`]).

pub mod access;
pub mod account;
pub mod audit;
pub mod campaigns;
pub mod check;
pub mod connect;
pub mod error;
pub mod evidence;
pub mod graph_tokens;
pub mod ids;
pub mod invitations;
pub mod keys;
pub mod mail;
pub mod microsoft_sign_in;
pub mod model;
pub mod platform;
pub mod ports;
pub mod reauth;
pub mod rollouts;
pub mod scan;
pub mod service;
pub mod status;
pub mod throttle;
pub mod vendor_credentials;
pub mod vendor_watch;
pub mod view;
pub mod webhooks;

pub use access::{Action, Caller, Role};
pub use account::{
    AccountScope, AccountStore, Accounts, ActiveSession, ConsoleSession, HashCost, NewSession,
    OperatorAccount, PersonalToken, SessionPolicy,
};
pub use audit::{
    AuditAction, AuditEntry, AuditHead, AuditLog, AuditPage, AuditStore, BreakReason, ChainBreak,
    ChainVerifier, ExportFormat, NewAuditEntry,
};
pub use campaigns::{
    CampaignCounts, CampaignItem, CampaignLink, CampaignMemberState, CampaignObserver,
    CampaignProgress, CampaignReport, CampaignRequest, CampaignSummary, CampaignTenant, Campaigns,
    LinkView, PassStep, StartedCampaign,
};
pub use check::{
    CheckOutcome, CheckPolicy, CheckStats, CheckStatsSnapshot, CheckTrigger, Checker,
    CredentialsFinding, StatusChange, StatusObserver,
};
pub use connect::{ConnectOutcome, ConnectStarted, TenantConnector};
pub use consentry_catalog as catalog;
pub use error::DomainError;
pub use evidence::{
    AppliedPolicy, Evidence, EvidenceUnavailable, MAX_EVIDENCE_ENTRIES, SignInLogEntry,
    SignInLogQuery,
};
pub use graph_tokens::{
    GraphTokenRequest, GraphTokens, IssuedToken, SAFETY_MARGIN, TokenError, TokenStats,
};
pub use ids::{
    ApiKeyId, AppId, CampaignId, CloudKey, DomainName, EmailAddress, EmailId, InvalidId, ObjectId,
    OrgId, ProfileId, ScanProfileId, Scope, TenantId, TenantRef, Thumbprint, Upn, WebhookId,
};
pub use invitations::{CreatedInvitation, InvitationView, Invitations};
pub use keys::{ApiKeys, NewApiKey};
pub use mail::{
    DeliveryFailure, DigestRecipients, EmailContent, InvalidEmails, Mail, OutboxMessage, Outgoing,
    RetryPolicy, TenantContacts,
};
pub use microsoft_sign_in::{MicrosoftSignIn, SignInRules};
pub use model::*;
pub use platform::{
    AccessToken, ClientRef, ConsentrySignIn, ConsoleSignInRequest, Grants, IdentityPlatform,
    Memberships, MicrosoftSignedIn, OrganizationFacts, PlatformCause, PlatformError, Refreshed,
    SignInRequest, SignedIn, TenantAt, TenantCloud, VivaEngageFacts,
};
pub use ports::{
    ApiKey, ApiKeyStore, Campaign, CampaignMember, CampaignScope, CampaignStore, CampaignTenantRow,
    CheckInput, CheckRelease, CheckSchedule, ConnectStep, ConnectionStore, EmailKind, EmailRecord,
    EmailState, Invitation, InvitationStore, LeasedCheck, LeasedEmail, MailStore,
    NewCampaignTenant, NewEmail, PendingConnection, RolloutMember, RolloutStore, ScheduleStore,
    ThrottleEntry, ThrottleStore, Webhook, WebhookDelivery, WebhookStore,
};
pub use ports::{Clock, OffsetClock, Store, StoreError, SystemClock};
pub use ports::{EntraIdentity, MemberRule, MicrosoftSignInStore, SignInAttempt};
pub use ports::{VendorAlertStore, VendorCredentialAlert};
pub use reauth::{
    CallbackOutcome, CallbackParams, CustomAppInput, HandoffView, OTHER_BROWSER, Reauthorizer,
    StartRequest, Started,
};
pub use rollouts::{
    MemberState, PermissionProgress, ProgressPoint, Rollout, RolloutPermission, RolloutProfile,
    RolloutReport, RolloutSummary, RolloutTenant, Rollouts, StateCounts,
};
pub use scan::{
    Conversion, NewScanProfile, PlannerReadiness, PlannerRefusal, ReadinessCode, ReadinessItem,
    SavedScanProfile, ScanAuth, ScanProfile, ScanProfileEdit, ScanProfileStore, ScanProfiles,
    TenantPlannerReadiness,
};
pub use service::{Consentry, NewProfile, Placement};
pub use status::{
    ActionOwner, CaRequirement, ProfileStatus, StatusReason, conditional_access_preparation,
};
pub use throttle::{DeviceToken, LoginAttempt, SignInThrottle};
pub use vendor_credentials::{
    ConfiguredCredential, CredentialFact, CredentialKind, Expiry, RegisteredCredential,
    Registration, RegistrationProblem, RegistrationRead, VendorAppFacts, VendorAppKey,
    VendorRegistration,
};
pub use vendor_watch::{
    VendorCredentialEvent, VendorCredentialObserver, VendorCredentialWatch, VendorSnapshot,
};
pub use view::{ProfileView, ReasonView};
pub use webhooks::{NewWebhook, Webhooks};
