// GA/T 1400 (视图库) intake for snapshot cameras: /VIID/System/Register, Keepalive, Faces.
#include "server/server_state.h"

namespace anju::server {

void Server::Impl::AddViidRoutes() {}

}  // namespace anju::server
