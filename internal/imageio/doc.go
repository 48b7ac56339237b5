// Package imageio turns what clients send (JPEG or PNG bytes, or raw RGB frames) into
// pixel arrays a model can take, and pixel arrays back into PNG files.
//
// Every decoder checks the image's declared size against Limits before it decodes a
// single pixel, so a small file that claims to be a gigapixel image (a decompression
// bomb) is refused cheaply.
package imageio
