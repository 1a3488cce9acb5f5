/**
 * Typed errors for expected runtime failures. Each has a literal snake_case
 * code and an HTTP status; lib/http maps them to the public JSON error body
 * `{"error": {"code", "message", ...details}}`.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }

  toBody(): { error: Record<string, unknown> } {
    return { error: { ...this.details, code: this.code, message: this.message } };
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
