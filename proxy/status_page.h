#pragma once
// The operator's status page served by the admin server at `GET /`: one self-contained HTML
// document (inline CSS and JavaScript, no external resources) that polls the admin API from the
// browser. The source is proxy/status_page.html; the build compiles it in (see CMakeLists.txt),
// so the binary needs no files beside it.
//
// Thread-safety: the returned view points at static storage, valid for the whole process.

#include <string_view>

namespace lockshift {

std::string_view statusPageHtml();

}  // namespace lockshift
