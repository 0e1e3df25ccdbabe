// The MCP SDK's client side, loaded on first use. The SDK (its zod schemas,
// ajv, the transports) costs ~25 MB of memory once loaded, and most gateways
// configure no MCP server: they never pay for it. `loadClientSdk` is
// awaited where a connection opens; `loadedClientSdk` answers synchronously
// where only an error the SDK itself threw needs reading (so it is loaded).
export interface ClientSdk {
  Client: typeof import('@modelcontextprotocol/sdk/client/index.js').Client;
  BoundedStdioTransport: typeof import('./stdio-transport.js').BoundedStdioTransport;
  getDefaultEnvironment: typeof import('@modelcontextprotocol/sdk/client/stdio.js').getDefaultEnvironment;
  StreamableHTTPClientTransport: typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js').StreamableHTTPClientTransport;
  types: typeof import('@modelcontextprotocol/sdk/types.js');
}

let loading: Promise<ClientSdk> | undefined;
let loaded: ClientSdk | undefined;

export function loadClientSdk(): Promise<ClientSdk> {
  loading ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/stdio.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
    import('./stdio-transport.js'),
  ]).then(([client, stdio, http, types, bounded]) => {
    loaded = {
      Client: client.Client,
      BoundedStdioTransport: bounded.BoundedStdioTransport,
      getDefaultEnvironment: stdio.getDefaultEnvironment,
      StreamableHTTPClientTransport: http.StreamableHTTPClientTransport,
      types,
    };
    return loaded;
  });
  return loading;
}

export function loadedClientSdk(): ClientSdk | undefined {
  return loaded;
}
