/*
 * qrterm: the QR code's module matrix, read back from the Terminal field
 * of the agent's QR message (SPEC.md 5.7.2), and drawn as 32-bit pixels
 * for the tile image.
 *
 * Terminal draws two module rows per line with Unicode half blocks, light
 * modules as ink (for dark terminals), with the quiet zone: U+2588 FULL
 * BLOCK = both light, U+2580 UPPER HALF = top light, bottom dark, U+2584
 * LOWER HALF = top dark, bottom light, space = both dark. The provider
 * uses it rather than the PNG (which would need an inflate decoder in
 * LogonUI) or its own QR encoder (the agent's is the one that is tested
 * against decoders): the agent sends the exact modules already.
 */
#ifndef JK_QRTERM_H
#define JK_QRTERM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest side in modules: version 40 (177) + quiet zone 2*4. */
#define JK_QR_MAX_SIDE 185

/*
 * jk_qr_parse reads Terminal text into dark[side*side] (1 = dark module,
 * row-major, quiet zone included) and returns side, or 0 if the text is
 * not a square half-block picture of at most JK_QR_MAX_SIDE modules: every
 * line the same width w, ending in '\n', (w+1)/2 lines, only the four
 * glyphs, and for odd w the bottom half of the last line light.
 */
int jk_qr_parse(const uint8_t *text, size_t n, uint8_t *dark, size_t cap);

/*
 * jk_qr_render draws side*side modules at scale pixels each into px
 * (BGRA, top-down rows of side*scale pixels: black 0xFF000000, white
 * 0xFFFFFFFF). px must hold (side*scale)^2 entries; returns 0 or -1.
 */
int jk_qr_render(const uint8_t *dark, int side, int scale, uint32_t *px, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
