package profile

import "github.com/iop-edge/iop/internal/transport"

func transportDialer() Dialer { return Dialer{} }

var zeroLimits transport.Limits
