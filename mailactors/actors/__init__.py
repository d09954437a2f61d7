"""pykka actors: thin glue between sockets, protocol/ and storage/."""
