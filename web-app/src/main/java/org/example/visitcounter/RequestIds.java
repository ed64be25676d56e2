package org.example.visitcounter;

import io.javalin.http.BadRequestResponse;
import java.util.UUID;
import java.util.regex.Pattern;

/** The id that makes counting a request idempotent: nginx's {@code $request_id}, or one we make. */
final class RequestIds {
    static final String HEADER = "X-Request-Id";
    private static final Pattern VALID = Pattern.compile("[A-Za-z0-9._:-]{1,128}");

    private RequestIds() {}

    /** The caller's id when it sent one, a fresh random one when it did not. */
    static String fromHeader(String header) {
        if (header == null) {
            return UUID.randomUUID().toString();
        }
        if (!VALID.matcher(header).matches()) {
            throw new BadRequestResponse(HEADER + " must be 1 to 128 characters of A-Z a-z 0-9 . _ : -");
        }
        return header;
    }
}
