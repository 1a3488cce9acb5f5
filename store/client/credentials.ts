/**
 * The store client's credentials (docs/SECURITY.md, "Store users and
 * roles"): a fixed token, or a user name and password traded for a token on
 * first use (POST /v1/auth/authenticate) and again when the store says the
 * token expired or was revoked. A cluster without auth enabled answers
 * `auth_not_enabled`: the client then sends no token until a 401 says auth
 * is on.
 */
import type { HttpRequester } from '../../lib/http-client.js';

export interface CredentialOptions {
  /** A token from POST /v1/auth/authenticate, sent as is (never renewed). */
  readonly token?: string;
  /** A user name and password: the client authenticates itself, lazily, and again once after a 401. */
  readonly user?: string;
  readonly password?: string;
}

/** Thrown when authenticating fails; the client turns it into its StoreError. */
export class CredentialError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class StoreCredentials {
  private pending: Promise<string | undefined> | undefined;

  constructor(
    private readonly opts: CredentialOptions,
    private readonly http: HttpRequester,
    private readonly timeoutMs: number,
  ) {
    if ((opts.user === undefined) !== (opts.password === undefined)) throw new Error('give both user and password, or neither');
    if (opts.token !== undefined && opts.user !== undefined) throw new Error('give a token or a user and password, not both');
  }

  /** The Authorization header to send to `base`, authenticating there first when needed. */
  async header(base: string): Promise<string | undefined> {
    if (this.opts.token !== undefined) return `Bearer ${this.opts.token}`;
    if (this.opts.user === undefined) return undefined;
    this.pending ??= this.authenticate(base).catch((e: unknown) => {
      this.pending = undefined;
      throw e;
    });
    const token = await this.pending;
    return token === undefined ? undefined : `Bearer ${token}`;
  }

  /** After a 401 with `code`: true when authenticating again may help (the cached token is dropped). */
  renew(code: string): boolean {
    if (this.opts.user === undefined || (code !== 'token_expired' && code !== 'unauthenticated')) return false;
    this.pending = undefined;
    return true;
  }

  private async authenticate(base: string): Promise<string | undefined> {
    const res = await this.http.request({
      method: 'POST',
      url: `${base}/v1/auth/authenticate`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: this.opts.user, password: this.opts.password }),
      timeoutMs: this.timeoutMs,
    });
    let payload: { token?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      payload = JSON.parse(res.text) as typeof payload;
    } catch {
      throw new CredentialError('unavailable', 503, `${base} sent a non-JSON answer to authenticate (${res.status})`);
    }
    if (res.status === 200 && typeof payload.token === 'string') return payload.token;
    const code = String(payload.error?.code ?? 'unknown');
    if (code === 'auth_not_enabled') return undefined;
    throw new CredentialError(code, res.status, `authenticate as ${this.opts.user ?? ''}: ${String(payload.error?.message ?? res.status)}`);
  }
}
