"""Generates httpd/openapi_doc.c, the OpenAPI document embedded in speechfsd.
Edit the document here and run: python3 httpd/gen_openapi.py"""
import json
import os
B="/api/v1/speech-services/files"
def err(desc): return {"description":desc,"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}}
def resp(code, desc, ref=None):
    r={"description":desc}
    if ref: r["content"]={"application/json":{"schema":{"$ref":"#/components/schemas/"+ref}}}
    return r
idp={"name":"id","in":"path","required":True,"schema":{"type":"string","format":"uuid"}}
fidp={"name":"fileId","in":"path","required":True,"schema":{"type":"string","format":"uuid"}}
sidp={"name":"shareId","in":"path","required":True,"schema":{"type":"string","format":"uuid"}}
purge={"name":"purge","in":"query","schema":{"type":"boolean","default":False}}
def q(name,t="string",**kw):
    s={"type":t}; s.update(kw); return {"name":name,"in":"query","schema":s}
common={"401":err("Missing or invalid authentication."),"403":err("Insufficient scope or not authorized."),"429":err("Rate limit exceeded.")}
def op(summary, scope, responses, params=None, body=None, opid=None):
    o={"summary":summary,"operationId":opid,"security":[{"apiKey":[]},{"bearer":[]},{"session":[]}],"x-required-scope":scope,"responses":dict(responses, **common)}
    if params: o["parameters"]=params
    if body: o["requestBody"]=body
    return o
listparams=[q("page","integer",default=0),q("size","integer",default=20,maximum=100),q("isDeleted","boolean",default=False),q("isContentDiscarded","boolean"),q("ingestionStatus"),q("name"),q("filename"),q("sha256"),q("createdAfter",format="date-time"),q("createdBefore",format="date-time"),q("listeningAudio.status"),q("listeningAudio.deleted","boolean"),q("listeningAudio.contentDiscarded","boolean"),q("path",default="/"),q("recursive","boolean",default=False),q("sort",default="creationDate,desc"),q("tags"),q("tagsMatch",enum=["all","any"],default="all"),q("publishMode",enum=["PRIVATE","INTERNAL"]),q("isPurged","boolean",description="Extension: with isDeleted=true, false lists the trash (deleted, not yet purged); true lists only what was purged")]
sharedparams=[q("page","integer",default=0),q("size","integer",default=20),q("accessType",enum=["DIRECT_SHARE","INTERNAL"]),q("name"),q("filename"),q("sort",default="creationDate,desc")]
jsonbody=lambda ref:{"required":True,"content":{"application/json":{"schema":{"$ref":"#/components/schemas/"+ref}}}}
ts={"type":"string","format":"date-time","nullable":True}
doc={"openapi":"3.0.3","info":{"title":"speechfs Files API","version":"0.1.0","description":"Files API of speechfsd (seed 000) with signed URLs, restore and a structured error body."},
"servers":[{"url":"/"}],
"paths":{
"/healthz":{"get":{"summary":"Liveness","operationId":"healthz","responses":{"200":{"description":"OK"}}}},
"/metrics":{"get":{"summary":"Prometheus metrics","operationId":"metrics","responses":{"200":{"description":"text/plain"}}}},
B:{"get":op("List Files","speech:files:read",{"200":resp(200,"Files retrieved.","FilesList"),"400":err("Invalid query parameters.")},listparams,opid="listFiles"),
   "post":op("Upload File (multipart) or Import File from URI (JSON)","speech:files:write",{"201":resp(201,"Created.","File"),"400":err("Invalid request."),"413":err("Too large or quota exceeded."),"415":err("Unsupported Content-Type."),"503":err("The object store that keeps blobs cannot be reached: nothing was stored (Retry-After).")},
     body={"required":True,"content":{"multipart/form-data":{"schema":{"type":"object","required":["file","name"],"properties":{"file":{"type":"string","format":"binary"},"name":{"type":"string"},"description":{"type":"string"},"path":{"type":"string"},"metadata":{"type":"string","description":"JSON object"},"tags":{"type":"string","description":"JSON array of strings"},"generateListeningAudio":{"type":"boolean","default":True}}}},
       "application/json":{"schema":{"$ref":"#/components/schemas/ImportRequest"}}}},opid="createFile")},
B+"/shared-with-me":{"get":op("List Shared Files","speech:files:read",{"200":resp(200,"Shared files.","SharedFilesList"),"400":err("Invalid query parameters.")},sharedparams,opid="listSharedFiles")},
B+"/{id}":{"get":op("Get File","speech:files:read",{"200":resp(200,"File.","File"),"404":err("Not found.")},[idp],opid="getFile"),
  "patch":op("Update File","speech:files:write",{"200":resp(200,"Updated.","File"),"400":err("Invalid body."),"404":err("Not found."),"409":err("File is deleted.")},[idp],jsonbody("UpdateRequest"),opid="updateFile"),
  "delete":op("Delete File","speech:files:delete",{"204":{"description":"Deleted."},"404":err("Not found."),"409":err("Already deleted.")},[idp,purge],opid="deleteFile")},
B+"/{id}/content":{"get":op("Download File","speech:files:read",{"200":{"description":"Content","content":{"application/octet-stream":{"schema":{"type":"string","format":"binary"}}}},"206":{"description":"Partial content"},"404":err("Not found."),"410":err("Gone."),"416":err("Range not satisfiable."),"422":err("Not ready."),"302":{"description":"Extension: with http.redirect_to_object_store, content kept in an object store is a redirect to a short-lived presigned URL of it (Location); the store answers Range itself.","headers":{"Location":{"schema":{"type":"string","format":"uri"}}}},"503":err("The object store keeping the content cannot be reached (Retry-After).")},[idp,{"name":"Range","in":"header","schema":{"type":"string"}}],opid="downloadFile")},
B+"/{id}/discard-content":{"post":op("Discard Content","speech:files:write",{"204":{"description":"Discarded."},"404":err("Not found."),"409":err("Conflict.")},[idp],opid="discardContent")},
B+"/{id}/restore":{"post":op("Restore a deleted file (extension)","speech:files:write",{"200":resp(200,"Restored.","File"),"404":err("Not found."),"409":err("Not deleted."),"410":err("Purged.")},[idp],opid="restoreFile")},
B+"/{id}/signed-url":{"post":op("Make a short-lived signed URL (extension)","speech:files:read",{"200":resp(200,"Signed URL.","SignedUrl"),"400":err("Invalid body."),"404":err("Not found.")},[idp],jsonbody("SignedUrlRequest"),opid="signedUrl")},
B+"/{id}/listening-audio/stream":{"get":op("Stream Listening Audio","speech:files:read",{"200":{"description":"audio/mpeg"},"206":{"description":"Partial content"},"404":err("Not found."),"410":err("Gone."),"416":err("Range not satisfiable."),"422":err("Not ready."),"302":{"description":"Extension: a redirect to a presigned URL of the object store (http.redirect_to_object_store).","headers":{"Location":{"schema":{"type":"string","format":"uri"}}}},"503":err("The object store keeping the audio cannot be reached (Retry-After).")},[idp],opid="streamListeningAudio")},
B+"/{id}/listening-audio/generate":{"post":op("Generate Listening Audio","speech:files:write",{"202":resp(202,"Accepted.","File"),"404":err("Not found."),"409":err("Conflict."),"410":err("Gone."),"422":err("Not ready.")},[idp],opid="generateListeningAudio")},
B+"/{id}/listening-audio":{"delete":op("Delete Listening Audio","speech:files:delete",{"204":{"description":"Deleted."},"404":err("Not found."),"409":err("Already deleted.")},[idp,purge],opid="deleteListeningAudio")},
B+"/{id}/listening-audio/purge":{"post":op("Purge Listening Audio","speech:files:write",{"204":{"description":"Purged."},"404":err("Not found."),"409":err("Conflict.")},[idp],opid="purgeListeningAudio")},
B+"/{fileId}/shares":{"get":op("List Shares","speech:files:read",{"200":resp(200,"Shares.","ShareList"),"404":err("Not found.")},[fidp],opid="listShares"),
  "post":op("Share File","speech:files:share",{"201":resp(201,"Created.","Share"),"200":resp(200,"Updated.","Share"),"400":err("Invalid."),"404":err("Not found.")},[fidp],jsonbody("ShareRequest"),opid="shareFile")},
B+"/{fileId}/shares/{shareId}":{"delete":op("Revoke Share","speech:files:share",{"204":{"description":"Revoked."},"404":err("Not found.")},[fidp,sidp],opid="revokeShare")},
B+"/{id}/listening-audio/peaks":{"get":op("Waveform peaks of the listening audio (extension)","speech:files:read",{"200":resp(200,"Peaks, made once by the listening-audio job, with an ETag.","Peaks"),"304":{"description":"Not modified (If-None-Match)."},"404":err("Not found; error_type peaks_not_found when the listening audio was made before peaks were kept (generate it again)."),"410":err("Gone."),"422":err("Listening audio not ready.")},[idp,{"name":"If-None-Match","in":"header","schema":{"type":"string"}}],opid="listeningAudioPeaks")},
"/api/v1/speech-services/tags":{"get":op("Tags in use in the caller's tenant, by prefix (extension)","speech:files:read",{"200":resp(200,"Tag names, sorted.","TagList"),"400":err("Invalid query parameters.")},[q("prefix",description="Case-insensitive name prefix; empty or absent for all"),q("size","integer",default=20,minimum=1,maximum=1000)],opid="listTags")},
"/api/v1/speech-services/session":{
  "post":{"summary":"Sign in: exchange an API key for a session cookie (extension)","operationId":"createSession","description":"The key goes in X-API-Key and nothing else (an Authorization header is refused). Answers with Set-Cookie sfs_session (HttpOnly, SameSite=Strict, Path=/, Secure when X-Forwarded-Proto or Forwarded says https). Requests with the cookie act as the key's user with its scopes; unsafe methods (anything but GET, HEAD, OPTIONS) also need the session's csrfToken in X-CSRF-Token. A session ends after session.idle_seconds without use, session.max_seconds after sign-in, at sign-out, or when its key is revoked. Failed sign-ins count toward the per-address authentication throttle.","security":[{"apiKey":[]}],"parameters":[{"name":"X-API-Key","in":"header","required":True,"schema":{"type":"string"}}],"responses":{"201":resp(201,"Signed in; the cookie is set.","Session"),"400":err("An Authorization header came with the key (ambiguous_credentials)."),"401":err("Missing or invalid API key."),"429":err("Too many failed authentications from this address (Retry-After).")}},
  "get":{"summary":"The current session and its CSRF token (extension)","operationId":"getSession","security":[{"session":[]}],"responses":{"200":resp(200,"Signed in.","Session"),"401":err("No session cookie, or the session ended (the cookie is cleared).")}},
  "delete":{"summary":"Sign out: end the session (extension)","operationId":"deleteSession","security":[{"session":[]}],"parameters":[{"name":"X-CSRF-Token","in":"header","required":True,"schema":{"type":"string"}}],"responses":{"204":{"description":"Signed out; the cookie is cleared."},"401":err("No session cookie, or the session ended."),"403":err("Missing or wrong X-CSRF-Token (csrf_failed).")}}},
},
"components":{"securitySchemes":{"apiKey":{"type":"apiKey","in":"header","name":"X-API-Key"},"bearer":{"type":"http","scheme":"bearer","bearerFormat":"JWT"},"session":{"type":"apiKey","in":"cookie","name":"sfs_session","description":"Extension: the web page's session (POST /api/v1/speech-services/session); unsafe methods also need X-CSRF-Token."}},
"schemas":{
"Error":{"type":"object","required":["status_code","error_type","message","validation_errors","request_id"],"properties":{"status_code":{"type":"integer"},"error_type":{"type":"string"},"message":{"type":"string"},"validation_errors":{"type":"array","items":{"type":"object","properties":{"error_type":{"type":"string"},"location":{"type":"string"},"message":{"type":"string"}}}},"request_id":{"type":"string","format":"uuid"}}},
"ListeningAudio":{"type":"object","nullable":True,"properties":{"status":{"type":"string","enum":["PENDING","PROCESSING","COMPLETED","FAILED"]},"size":{"type":"integer","format":"int64","nullable":True},"createdAt":ts,"deleted":{"type":"boolean"},"isPurged":{"type":"boolean"},"deletedAt":ts,"purgedAt":ts,"purgeAt":ts}},
"File":{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"name":{"type":"string"},"filename":{"type":"string","nullable":True,"description":"The original filename; for an import, the last segment of the URI path, percent-decoded (null when the URI has none)"},"description":{"type":"string","nullable":True},"path":{"type":"string"},"size":{"type":"integer","format":"int64","nullable":True},"durationSeconds":{"type":"number","nullable":True},"sha256":{"type":"string","nullable":True},"ingestionStatus":{"type":"string","nullable":True,"enum":["PENDING","PROCESSING","COMPLETED","FAILED",None]},"listeningAudio":{"$ref":"#/components/schemas/ListeningAudio"},"isDeleted":{"type":"boolean"},"isPurged":{"type":"boolean"},"isContentDiscarded":{"type":"boolean"},"creationDate":{"type":"string","format":"date-time"},"deletedAt":ts,"purgedAt":ts,"purgeAt":ts,"contentDiscardedAt":ts,"metadata":{"type":"object","nullable":True},"tags":{"type":"array","nullable":True,"items":{"type":"string"}},"publishMode":{"type":"string","nullable":True,"enum":["PRIVATE","INTERNAL",None]},"publishedAt":ts}},
"SharedFile":{"allOf":[{"$ref":"#/components/schemas/File"},{"type":"object","properties":{"accessType":{"type":"string","enum":["DIRECT_SHARE","INTERNAL"]},"permission":{"type":"string","nullable":True},"sharedBy":{"type":"string","nullable":True},"sharedAt":ts}}]},
"FilesList":{"type":"object","properties":{"files":{"type":"array","items":{"$ref":"#/components/schemas/File"}},"directories":{"type":"array","nullable":True,"items":{"type":"string"}},"size":{"type":"integer"},"total":{"type":"integer","format":"int64"},"filters":{"type":"object"},"sort":{"type":"object"}}},
"SharedFilesList":{"type":"object","properties":{"files":{"type":"array","items":{"$ref":"#/components/schemas/SharedFile"}},"size":{"type":"integer"},"total":{"type":"integer","format":"int64"},"filters":{"type":"object"},"sort":{"type":"object"}}},
"ImportRequest":{"type":"object","required":["uri","name"],"properties":{"uri":{"type":"string"},"name":{"type":"string"},"description":{"type":"string"},"path":{"type":"string"},"metadata":{"type":"object"},"generateListeningAudio":{"type":"boolean","default":True}}},
"UpdateRequest":{"type":"object","properties":{"name":{"type":"string"},"description":{"type":"string","nullable":True},"path":{"type":"string"},"metadata":{"type":"object","nullable":True},"tags":{"type":"array","items":{"type":"string"}},"publishMode":{"type":"string","enum":["PRIVATE","INTERNAL"]}}},
"ShareRequest":{"type":"object","required":["userId"],"properties":{"userId":{"type":"string","format":"uuid"},"permission":{"type":"string","enum":["VIEW","EDIT"],"default":"VIEW"}}},
"Share":{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"fileId":{"type":"string","format":"uuid"},"userId":{"type":"string","format":"uuid"},"permission":{"type":"string","enum":["VIEW","EDIT"]},"createdBy":{"type":"string","format":"uuid"},"createdAt":{"type":"string","format":"date-time"}}},
"ShareList":{"type":"object","properties":{"shares":{"type":"array","items":{"$ref":"#/components/schemas/Share"}}}},
"SignedUrlRequest":{"type":"object","properties":{"target":{"type":"string","enum":["content","listening-audio"],"default":"content"},"expiresInSeconds":{"type":"integer","default":300,"minimum":1,"maximum":3600}}},
"SignedUrl":{"type":"object","properties":{"url":{"type":"string"},"expiresAt":{"type":"string","format":"date-time"}}},
"Peaks":{"type":"object","properties":{"bits":{"type":"integer","description":"Peaks are 0..2^bits-1 (8)"},"sampleRate":{"type":"integer"},"durationSeconds":{"type":"number"},"secondsPerPeak":{"type":"number"},"count":{"type":"integer","maximum":2000},"peaks":{"type":"array","items":{"type":"integer","minimum":0,"maximum":255},"description":"The loudest sample of each equal slice of time, in order"}}},
"TagList":{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"}},"size":{"type":"integer"}}},
"Session":{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"userId":{"type":"string","format":"uuid"},"tenantId":{"type":"string","format":"uuid"},"scopes":{"type":"array","items":{"type":"string"}},"createdAt":{"type":"string","format":"date-time"},"expiresAt":{"type":"string","format":"date-time"},"idleExpiresAt":{"type":"string","format":"date-time"},"csrfToken":{"type":"string","description":"Send in X-CSRF-Token with every unsafe request made with the cookie"}}},
}}}
s=json.dumps(doc,separators=(",",":"))
out=["/*"," * The OpenAPI 3 document of the API, served at /api/v1/openapi.json."," * Generated by httpd/gen_openapi.py (the one source of truth): do not edit."," */",'#include "httpd.h"',"","const char httpd_openapi_json[] ="]
line = ""
for ch in s:
    e = {"\\": "\\\\", '"': '\\"'}.get(ch, ch)
    if len(line) + len(e) > 68:
        out.append('\t"%s"' % line)
        line = ""
    line += e
out.append('\t"%s"' % line)
out[-1]+=";"
open(os.path.join(os.path.dirname(os.path.abspath(__file__)),"openapi_doc.c"),"w").write("\n".join(out)+"\n")
