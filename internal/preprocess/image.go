// Package preprocess turns images into model inputs the way ImageNet
// classifiers expect: resize the shorter side, centre-crop, scale to [0,1]
// and normalize per channel.
package preprocess

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // register JPEG
	_ "image/png"  // register PNG
	"os"

	"golang.org/x/image/draw"

	"github.com/iop-edge/iop/internal/tensor"
)

// ImageNet normalization constants (torchvision).
var (
	Mean = [3]float32{0.485, 0.456, 0.406}
	Std  = [3]float32{0.229, 0.224, 0.225}
)

// IsImage reports whether data starts like a JPEG or PNG file.
func IsImage(data []byte) bool {
	return bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}) || bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n"))
}

// LoadFile decodes a JPEG or PNG file into a [1,3,h,w] float32 tensor.
func LoadFile(path string, h, w int) (*tensor.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(data, h, w)
}

// Decode decodes a JPEG or PNG image and preprocesses it: the shorter side
// is resized to 256/224 of the target size, the centre h×w is cropped, and
// each channel is normalized with Mean and Std. The result is [1,3,h,w].
func Decode(data []byte, h, w int) (*tensor.Tensor, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("image target size %d×%d is invalid", h, w)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a decodable JPEG or PNG image: %v", err)
	}
	b := img.Bounds()
	if b.Dx() == 0 || b.Dy() == 0 {
		return nil, fmt.Errorf("%s image is empty", format)
	}
	// Resize so the shorter side is 256/224 of the crop (the ImageNet recipe).
	short := min(b.Dx(), b.Dy())
	target := max(h, w) * 256 / 224
	rw := max(w, b.Dx()*target/short)
	rh := max(h, b.Dy()*target/short)
	resized := image.NewRGBA(image.Rect(0, 0, rw, rh))
	draw.BiLinear.Scale(resized, resized.Bounds(), img, b, draw.Src, nil)
	x0, y0 := (rw-w)/2, (rh-h)/2
	t := tensor.New(tensor.Float32, tensor.Shape{1, 3, h, w})
	plane := h * w
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			off := resized.PixOffset(x0+x, y0+y)
			px := resized.Pix[off : off+3]
			for c := 0; c < 3; c++ {
				t.F[c*plane+y*w+x] = (float32(px[c])/255 - Mean[c]) / Std[c]
			}
		}
	}
	return t, nil
}
