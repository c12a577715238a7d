// libcurl helpers for tests: a write callback that appends the body to a
// std::string, and a plain GET of a URL's body.
#ifndef UPLOADBROKER_TESTS_TESTING_HTTP_GET_H_
#define UPLOADBROKER_TESTS_TESTING_HTTP_GET_H_

#include <curl/curl.h>

#include <string>

namespace uploadbroker::testing {

// CURLOPT_WRITEFUNCTION for a std::string* CURLOPT_WRITEDATA.
inline size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The body of GET `url` ("" when the request fails).
inline std::string HttpGet(const std::string& url) {
  std::string body;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  if (curl_easy_perform(c) != CURLE_OK) body.clear();
  curl_easy_cleanup(c);
  return body;
}

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_HTTP_GET_H_
