// Lane policies shared by the policy tests.
export const TEST_POLICIES = `
default_lane: green
tools:
  search: {}
  send_email: {}
  shell: {}
  update_ticket: {}
detectors:
  ticket_secret: { pattern: 'TOPSECRET-[0-9]{4}' }
lanes:
  green:
    rank: 10
    deployments: ["*"]
    detectors:
      api_key: block
      ticket_secret: block
      card: { action: escalate, lane: red }
      email: { action: escalate, lane: amber }
    tools:
      deny: [shell]
      on_denied: reject
      require_approval: [send_email]
      recipients: { allow_domains: [example.com], max: 3 }
  amber:
    rank: 20
    deployments: [fakeopenai, mock, slowmock]
    detectors:
      api_key: block
      card: { action: escalate, lane: red }
      email: redact
      phone: redact
    restore_redactions: true
    tools:
      allow: [search, send_email]
      on_denied: strip
      require_approval: [send_email]
  red:
    rank: 30
    deployments: [mock]
    detectors:
      card: redact
      email: redact
    restore_redactions: true
    required_metadata: [purpose]
`;

/** Test config additions: policies on, beta's key limited to amber. */
export const WITH_POLICIES = `
policies: { dir: ./policies }
`;
