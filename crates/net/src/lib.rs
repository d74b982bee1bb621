//! berth's networks: bridges, veth pairs, IPAM, published ports, name resolution
