/**
 * WTF-8: UTF-8 extended to lone surrogates (https://simonsapin.github.io/wtf-8/).
 *
 * Why not TextEncoder/TextDecoder: a JavaScript string may hold unpaired surrogates, which TextEncoder replaces
 * by U+FFFD, so a byte-level tokenizer built on it would not round-trip every string. WTF-8 encodes a lone
 * surrogate as its 3-byte generalized UTF-8 form and is identical to UTF-8 for every well-formed string.
 */

/** Encodes a string as WTF-8 bytes (UTF-8 for well-formed strings). */
export function encodeWtf8(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3); // every UTF-16 code unit takes at most 3 bytes
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < s.length) {
      const low = s.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (cp < 0x80) {
      out[n++] = cp;
    } else if (cp < 0x800) {
      out[n++] = 0xc0 | (cp >> 6);
      out[n++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      out[n++] = 0xe0 | (cp >> 12);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
    } else {
      out[n++] = 0xf0 | (cp >> 18);
      out[n++] = 0x80 | ((cp >> 12) & 0x3f);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
    }
  }
  return out.subarray(0, n);
}

const REPLACEMENT = 0xfffd;

/**
 * Decodes WTF-8 bytes. Invalid sequences (which a model can sample) become U+FFFD exactly as TextDecoder does
 * for UTF-8 (the WHATWG decoder: one U+FFFD per maximal invalid subpart); the only difference is that encoded
 * surrogates (ED A0-BF xx) decode to the UTF-16 code units they came from.
 */
export function decodeWtf8(bytes: Uint8Array): string {
  const units: number[] = [];
  let out = '';
  let codePoint = 0;
  let needed = 0; // continuation bytes still expected
  let seen = 0;
  let lower = 0x80; // allowed range of the next continuation byte
  let upper = 0xbf;
  const emit = (cp: number) => {
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      units.push(cp);
    }
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  };
  let i = 0;
  while (i < bytes.length) {
    const byte = bytes[i];
    if (needed === 0) {
      i++;
      if (byte < 0x80) emit(byte);
      else if (byte >= 0xc2 && byte <= 0xdf) {
        needed = 1;
        codePoint = byte & 0x1f;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        // WHATWG narrows ED to 80-9F to refuse surrogates; WTF-8 accepts them, so only E0 is narrowed.
        if (byte === 0xe0) lower = 0xa0;
        needed = 2;
        codePoint = byte & 0x0f;
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        if (byte === 0xf0) lower = 0x90;
        if (byte === 0xf4) upper = 0x8f;
        needed = 3;
        codePoint = byte & 0x07;
      } else emit(REPLACEMENT);
      continue;
    }
    if (byte < lower || byte > upper) {
      // The sequence so far is one maximal invalid subpart; the byte is looked at again as a fresh start.
      codePoint = needed = seen = 0;
      lower = 0x80;
      upper = 0xbf;
      emit(REPLACEMENT);
      continue;
    }
    i++;
    lower = 0x80;
    upper = 0xbf;
    codePoint = (codePoint << 6) | (byte & 0x3f);
    if (++seen === needed) {
      emit(codePoint);
      codePoint = needed = seen = 0;
    }
  }
  if (needed !== 0) emit(REPLACEMENT);
  return out + String.fromCharCode(...units);
}
