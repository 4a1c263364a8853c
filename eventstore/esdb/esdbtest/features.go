package esdbtest

import (
	"context"
	"net"
	"strconv"
	"time"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	featuresapi "github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
)

// serverVersion is the EventStoreDB version the double reports; the client
// only parses it.
const serverVersion = "23.10.0"

// features answers the client's connect-time question of what the server
// supports: exactly the calls this double implements.
type features struct {
	featuresapi.UnimplementedServerFeaturesServer
}

func (features) GetSupportedMethods(context.Context, *shared.Empty) (*featuresapi.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	return &featuresapi.SupportedMethods{
		EventStoreServerVersion: serverVersion,
		Methods: []*featuresapi.SupportedMethod{
			{ServiceName: streams, MethodName: "read"},
			{ServiceName: streams, MethodName: "append"},
			{ServiceName: "event_store.client.gossip.gossip", MethodName: "read"},
		},
	}, nil
}

// gossip describes a one-node cluster whose leader is this server, for
// clients given an esdb+discover:// or multi-host connection string.
type gossip struct {
	gossipapi.UnimplementedGossipServer
	addr string
}

func (g *gossip) Read(context.Context, *shared.Empty) (*gossipapi.ClusterInfo, error) {
	host, portText, _ := net.SplitHostPort(g.addr)
	port, _ := strconv.ParseUint(portText, 10, 16)
	return &gossipapi.ClusterInfo{Members: []*gossipapi.MemberInfo{{
		InstanceId:   uuidToProto(uuid.NewSHA1(uuid.NameSpaceURL, []byte(g.addr)), true),
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossipapi.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossipapi.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}
