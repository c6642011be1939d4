package profile

import "github.com/iop-edge/iop/internal/transport"

func transportDialer() transport.Dialer { return transport.Dialer{} }

var zeroLimits transport.Limits
